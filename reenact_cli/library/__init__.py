"""A motion library at scale: learn many reference videos, and apply the motions to many images, over several
ComfyUI servers, with a manifest on disk as the source of truth (`python -m reenact_cli.library`).

- jobs: what a job is, its id (the input's bytes and the problem settings), and the cheap checks before a run;
- manifest: the JSON-lines manifest, the claim that keeps two runs from doing one job, the fold into job states;
- graphs: the API prompt each job queues (the bundled workflows, or the toy's for the tests and the demo);
- execute: one job on one server: upload, queue, follow with a stall timeout, fetch the output atomically;
- servers: the servers, given as URLs or started here (one per GPU, or CPU ones), checked at the start;
- scheduler: the one code path: which job goes to which server, retries, Ctrl-C; back-ends run the attempts:
  backend_local (a thread per server, no new dependency) and backend_ray (an actor per server, optional);
- report: the progress lines, the summary table and the contact sheet.
"""
