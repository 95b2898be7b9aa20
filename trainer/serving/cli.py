"""``labrador chat`` and ``labrador serve``: talk to, or serve, the model a night made (or any model)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labrador.validators.exits import Exit, UsageError, command, require_extra

REF_HELP = ("latest (the newest promoted night, the default), a night id (night-0003), a catalogue name "
            "(smollm2-135m-instruct) or a model folder")


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("chat", help="talk to a model in the terminal (default: the newest promoted night)",
                       description="A terminal chat with a model through its own chat template, greedy, streamed "
                       "as it is decoded. Commands: /reset, /save FILE (the conversation as a training sample), "
                       "/exit. With -q: answer once and exit.")
    c.add_argument("--model", metavar="REF", default=None, help=REF_HELP)
    c.add_argument("-q", "--question", metavar="TEXT", help="ask this once, print the answer, exit")
    c.add_argument("--system", metavar="TEXT", help="a system message before the conversation")
    c.add_argument("--max-new-tokens", type=int, default=256, metavar="N", help="longest answer (default 256)")
    c.add_argument("--state-dir", type=Path, metavar="DIR", help="the nightly state (default: .labrador in the "
                   "repository)")
    c.set_defaults(func=run_chat)
    s = sub.add_parser("serve", help="serve a model over an OpenAI-compatible API (vLLM on a GPU, else "
                       "transformers serve)",
                       description="Serve a model at http://HOST:PORT/v1 (chat completions, models): with vLLM "
                       "where it is installed and a GPU is present, else with `transformers serve`. The URL works "
                       "as a [teacher] spec and as a judge. Ctrl-C or SIGTERM stops the server.")
    s.add_argument("--model", metavar="REF", default=None, help=REF_HELP)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--state-dir", type=Path, metavar="DIR", help="the nightly state (default: .labrador in the "
                   "repository)")
    s.set_defaults(func=run_serve)


def _model(args: argparse.Namespace):  # noqa: ANN202 - a ModelRef
    from ..nightly.cli import default_state_dir
    from .refs import ModelRefError, resolve_model

    try:
        return resolve_model(args.model, args.state_dir or default_state_dir(Path(".")))
    except ModelRefError as exc:
        raise UsageError(str(exc)) from None


@command("chat")
def run_chat(args: argparse.Namespace) -> int:
    if args.max_new_tokens < 1:
        raise UsageError("--max-new-tokens must be at least 1")
    require_extra("train")
    ref = _model(args)
    from .chat import Chat, repl

    chat = Chat(ref.folder, system=args.system, max_new_tokens=args.max_new_tokens)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    if args.question is not None:
        chat.ask(args.question, on_text=write)
        write("\n")
        return Exit.OK

    def lines():  # noqa: ANN202
        while True:
            try:
                yield input("you> ")
            except EOFError:
                return

    try:
        return repl(chat, lines(), write)
    except KeyboardInterrupt:
        write("\n")
        return Exit.OK


@command("serve")
def run_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, got {args.port}")
    require_extra("train")
    ref = _model(args)
    import tempfile

    from ..train.lora import is_adapter
    from .server import serve, server_argv

    with tempfile.TemporaryDirectory(prefix="labrador-serve-") as scratch:
        folder = ref.folder
        if is_adapter(folder):  # servers load whole models: fold the adapters in, for as long as we serve
            folder = _folded(folder, Path(scratch) / ref.name)
        argv, served = server_argv(folder, ref.name, args.host, args.port)
        host = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{host}:{args.port}/v1"
        print(f"model: {ref.name} ({ref.folder})\nbase URL: {url}\nserved model name: {served}", flush=True)
        code = serve(argv, url, served, lambda text: print(text, file=sys.stderr, flush=True))
    return Exit.OK if code == 0 else Exit.FAILED


def _folded(adapter: Path, out: Path) -> Path:
    from transformers import AutoTokenizer

    from ..train.lora import load_merged

    load_merged(adapter, dtype="auto").save_pretrained(str(out), safe_serialization=True)
    AutoTokenizer.from_pretrained(adapter).save_pretrained(str(out))
    return out
