"""The local back-end: the attempts run in this process, a thread per server (the scheduler's), talking to each
server over HTTP. No dependency beyond the pack's. Servers are given (URLs, with --models-dir) or started here."""
from .execute import run_job, server_state
from .servers import Server, prepare, start_servers, stop_servers


class LocalBackend:
    def __init__(self, args):
        self.args = args
        self.started = []

    def start(self, urls, count, workdir) -> list:
        devices = self.args.cuda_devices.split(",") if self.args.cuda_devices else None
        self.started = start_servers(count, workdir, devices, self.args.toy, self.args.models_dir) if count else []
        return self.started + [Server(url.rstrip("/"), self.args.models_dir) for url in urls]

    def check(self, server, toy, checkpoint):
        return prepare(server.url, server.models_dir, toy, checkpoint)

    def attempt(self, server, job, files, cancelled):
        return run_job(job, files, server.url, server.models_dir, self.args.stall_timeout, cancelled)

    def server_state(self, server, prompt_id):
        return server_state(server.url, prompt_id)

    def stop(self):
        stop_servers(self.started)
