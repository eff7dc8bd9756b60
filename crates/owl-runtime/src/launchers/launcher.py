# owl runtime: the Python ActionLoop launcher (part of owl, Apache-2.0).
#
# Loads the action once, acknowledges on fd 3, then reads one JSON line per
# activation on stdin ({"value": params, "activation_id": ..., ...}), exports every
# other key as __OW_<KEY>, calls main(value) and writes the result as one JSON line on
# fd 3. stdout and stderr are the action's logs. Semantics follow OpenWhisk's Python
# runtime: an exception becomes {"error": str(exception)} (an application error) with
# its traceback on stderr; a zip (directory) must hold __main__.py; a directory
# `virtualenv` inside it is put on the path.
import importlib.util
import json
import os
import sys
import traceback

RESULT = os.fdopen(3, "wb")


def send(obj):
    try:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except Exception as ex:  # not serialisable
        data = json.dumps({"__owl_developer_error": "An error has occurred: %s" % ex}).encode("utf-8")
    sys.stdout.flush()
    sys.stderr.flush()
    RESULT.write(data)
    RESULT.write(b"\n")
    RESULT.flush()


def load(code, main):
    if os.path.isdir(code):
        for site in ("virtualenv/lib", "virtualenv/Lib"):
            base = os.path.join(code, site)
            if os.path.isdir(base):
                for entry in sorted(os.listdir(base)):
                    packages = os.path.join(base, entry, "site-packages")
                    if os.path.isdir(packages):
                        sys.path.insert(0, packages)
                packages = os.path.join(base, "site-packages")
                if os.path.isdir(packages):
                    sys.path.insert(0, packages)
        sys.path.insert(0, code)
        path = os.path.join(code, "__main__.py")
        if not os.path.isfile(path):
            raise Exception("Zipped actions must contain __main__.py at the root.")
    else:
        sys.path.insert(0, os.path.dirname(code))
        path = code
    spec = importlib.util.spec_from_file_location("main__", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["main__"] = module
    spec.loader.exec_module(module)
    handler = getattr(module, main, None)
    if not callable(handler):
        raise Exception("Action entrypoint '%s' is not a function." % main)
    return handler


def main():
    code = os.environ.get("OWL_ACTION_CODE", "")
    entry = os.environ.get("OWL_ACTION_MAIN") or "main"
    try:
        os.chdir(code if os.path.isdir(code) else os.path.dirname(code) or ".")
        handler = load(code, entry)
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        send({"ok": False})
        sys.exit(1)
    send({"ok": True})
    env = os.environ
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            args = json.loads(line)
        except Exception as ex:
            send({"__owl_developer_error": "An error has occurred: %s" % ex})
            continue
        payload = {}
        for key, value in args.items():
            if key == "value":
                payload = value
            else:
                env["__OW_%s" % key.upper()] = value if isinstance(value, str) else json.dumps(value)
        if isinstance(args.get("lambda_trace_id"), str):
            env["_X_AMZN_TRACE_ID"] = args["lambda_trace_id"]
        try:
            res = handler(payload)
        except Exception as ex:
            print(traceback.format_exc(), file=sys.stderr, end="")
            res = {"error": str(ex)}
        send(res)


main()
