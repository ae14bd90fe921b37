"""The real gcloud's argument parser, loaded once, behind a Unix socket.

Run by tests/infra/conftest.py with the Python that the installed gcloud uses
(``CLOUDSDK_PYTHON``, or the SDK's bundled one): it imports the SDK's own calliope
CLI (``googlecloudsdk.gcloud_main.CreateCLI``) and answers one JSON request per
connection, so that every invocation of the gcloud stand-in is checked by gcloud
itself without paying gcloud's start-up each time:

- ``parse``: what ``calliope.cli.CLI.Execute`` does before it runs a command
  (``parser.parse_args``, then ``CONCEPT_ARGS.ParseConcepts()``), and a check
  of ``--format`` and ``--filter`` with gcloud's resource printer and filter
  compiler. Nothing runs; nothing reaches the network (a dummy token, prompts
  and usage reporting off, a scratch config directory).
- ``render``: prints resources with a ``--format`` the way gcloud does.
- ``filter``: evaluates a ``--filter`` expression on resources.
- ``upload_files``: what ``gcloud functions deploy --source`` and ``gcloud builds
  submit --ignore-file`` would upload from a directory (gcloud's gcloudignore).

Usage: python gcloud_parser.py SDK_ROOT SOCKET_PATH   (prints "ready" when listening)
"""

import contextlib
import io
import json
import os
import socket
import sys
import tempfile
import traceback
from pathlib import Path


def _load_sdk(sdk_root):
    lib = Path(sdk_root) / "lib"
    sys.path.insert(0, str(lib / "third_party"))
    sys.path.insert(0, str(lib))
    from googlecloudsdk import gcloud_main

    return gcloud_main.CreateCLI([])


@contextlib.contextmanager
def _captured_output():
    """Everything written to stdout and stderr meanwhile, at the descriptor level:
    gcloud's log module writes errors to the streams it found at start-up."""
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        text = io.StringIO()
        try:
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text.write(sink.read().decode(errors="replace"))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(getattr(value, "total_seconds", None), (int, float)):
        return value.total_seconds  # core/util/iso_duration.Duration
    return str(value)


class Parser:
    def __init__(self, cli):
        self.cli = cli
        # The top-level argparse parser of the generated CLI (calliope/cli.py, CLI.__init__).
        self.parser = cli._TopElement()._parser

    def parse(self, argv, cwd):
        from googlecloudsdk.core import properties
        from googlecloudsdk.core.configurations import named_configs

        os.chdir(cwd)  # flags that name files (--env-vars-file) read them now
        named_configs.FLAG_OVERRIDE_STACK.PushFromArgs(argv)
        properties.VALUES.PushInvocationValues()
        out = io.StringIO()
        try:
            with _captured_output() as out:
                args = self.parser.parse_args(argv)
                if args.CONCEPT_ARGS is not None:
                    args.CONCEPT_ARGS.ParseConcepts()
                command = ".".join(args._GetCommand().GetPath())
                specified = args.GetSpecifiedArgs()
                if args.CONCEPTS is not None:
                    args.CONCEPTS.Reset()
                self._check_display_flags(specified)
        except SystemExit as exc:
            lines = out.getvalue().strip().splitlines()
            errors = [line for line in lines if line.startswith("ERROR:")]
            return {"ok": False, "error": "\n".join(errors or lines[:20]) or f"exit {exc.code}"}
        except Exception as exc:  # gcloud raises many kinds here
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}\n{out.getvalue()}"}
        finally:
            properties.VALUES.PopInvocationValues()
            named_configs.FLAG_OVERRIDE_STACK.Pop()
        return {"ok": True, "command": command, "args": _jsonable(specified)}

    @staticmethod
    def _check_display_flags(specified):
        from googlecloudsdk.core.resource import resource_filter, resource_printer

        if "--format" in specified:
            resource_printer.Print([], specified["--format"], out=io.StringIO())
        if "--filter" in specified:
            resource_filter.Compile(specified["--filter"])

    @staticmethod
    def render(request):
        from googlecloudsdk.core.resource import resource_printer

        out = io.StringIO()
        if "resource" in request:
            resource_printer.Print(request["resource"], request["format"], out=out, single=True)
        else:
            resource_printer.Print(request["resources"], request["format"], out=out)
        return {"ok": True, "out": out.getvalue()}

    @staticmethod
    def filter(request):
        from googlecloudsdk.core.resource import resource_filter

        compiled = resource_filter.Compile(request["expression"])
        return {"ok": True, "keep": [bool(compiled.Evaluate(r)) for r in request["resources"]]}

    @staticmethod
    def lifecycle(request):
        # What `gcloud storage buckets update --lifecycle-file` reads and checks.
        from apitools.base.py import encoding
        from googlecloudsdk.api_lib.storage.gcs_json import metadata_field_converters

        message = metadata_field_converters.process_lifecycle(request["path"])
        return {"ok": True, "lifecycle": encoding.MessageToDict(message) if message else None}

    @staticmethod
    def upload_files(request):
        from googlecloudsdk.command_lib.util import gcloudignore

        directory = request["directory"]
        default_ignore = gcloudignore.DEFAULT_IGNORE_FILE
        if request.get("kind") == "functions":
            # command_lib/functions/source_util.py (_GetChooser) adds node_modules.
            default_ignore += "\nnode_modules\n"
        chooser = gcloudignore.GetFileChooserForDir(
            directory,
            default_ignore_file=default_ignore,
            write_on_disk=False,
            ignore_file=request.get("ignore_file"),
        )
        files = chooser.GetIncludedFiles(directory, include_dirs=False)
        return {"ok": True, "files": sorted(files)}


def serve(sdk_root, socket_path):
    parser = Parser(_load_sdk(sdk_root))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(8)
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        with connection:
            data = b""
            while not data.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
            if not data:
                continue
            request = json.loads(data)
            if request.get("op") == "quit":
                connection.sendall(b'{"ok": true}\n')
                return
            try:
                if request["op"] == "parse":
                    answer = parser.parse(request["argv"], request["cwd"])
                else:
                    answer = getattr(parser, request["op"])(request)
            except Exception as exc:  # report, keep serving
                answer = {"ok": False, "error": f"{exc}\n{traceback.format_exc()}"}
            connection.sendall(json.dumps(answer).encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
