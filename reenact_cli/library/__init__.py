"""A motion library at scale: learn many reference videos, and apply the motions to many images, over several
ComfyUI servers, with a manifest on disk as the source of truth (`python -m reenact_cli.library`).

- jobs: what a job is, its id (the input's bytes and the problem settings), and the cheap checks before a run;
- manifest: the SQLite manifest: job states and their events, transactional claims, which runs are alive;
- graphs: the API prompt each job queues (the bundled workflows, or the toy's for the tests and the demo);
- execute: one attempt where the server is: input bytes in, upload, queue, follow with a stall timeout, output
  bytes back; which failures mark a server down and which let it rest;
- servers: the servers, given as URLs or started here (one per GPU, or CPU ones), checked at the start;
- scheduler: the one code path: which job goes to which server, retries, Ctrl-C; back-ends run the attempts:
  backend_local (a thread per server, no new dependency) and backend_ray (an actor per server, optional);
- report: the progress lines, the summary table and the contact sheet.
"""
