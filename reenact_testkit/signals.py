"""Ctrl-C for a command that a test starts, whatever SIGINT state the test run itself inherited."""
import signal


def default_sigint():
    """`preexec_fn` for subprocess.Popen: SIGINT back to its default in the child.

    Why: a pytest started in the background of a non-interactive shell (`cmd &`, as a CI script may) ignores SIGINT,
    and a child inherits that; its Python then never raises KeyboardInterrupt and a Ctrl-C test sees the command run
    to its end (exit 0) instead of stopping."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
