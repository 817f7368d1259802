#!/usr/bin/env python3
"""render_jinja.py: the reference renderer for Ignis's chat-template tests.

Renders chat templates with Python's jinja2 in the environment Hugging Face's
apply_chat_template builds (transformers/utils/chat_template_utils.py):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
loopcontrols extension, a tojson filter that is json.dumps(ensure_ascii=False),
and the globals raise_exception(msg) and strftime_now(fmt). strftime_now uses
the case's fixed "time" (Unix seconds, local time) so that both renderers agree.

Input (stdin): a JSON list of cases, each
  {"template": str, "messages": [...], "add_generation_prompt": bool,
   "bos_token": str|null, "eos_token": str|null, "extra": {...}, "time": int}
Output (stdout): a JSON list, per case {"ok": str} or {"error": str}.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(Exception):
    pass


class Generation(Extension):
    """{% generation %}...{% endgeneration %}: renders its body, as HF's
    AssistantTracker does when no assistant mask is asked for."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_render", [])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return now.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols, Generation])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


_compiled = {}


def render(case):
    # Environments and compiled templates are cached per (time, source).
    key = (case.get("time", 0), case["template"])
    if key not in _compiled:
        env = make_env(datetime.fromtimestamp(key[0]))
        _compiled[key] = env.from_string(case["template"])
    tmpl = _compiled[key]
    kwargs = {}
    if case.get("bos_token") is not None:
        kwargs["bos_token"] = case["bos_token"]
    if case.get("eos_token") is not None:
        kwargs["eos_token"] = case["eos_token"]
    kwargs.update(case.get("extra") or {})
    args = dict(messages=case["messages"], tools=None, documents=None,
                add_generation_prompt=case.get("add_generation_prompt", False))
    args.update(kwargs)
    return tmpl.render(**args)


def main():
    cases = json.load(sys.stdin)
    results = []
    for case in cases:
        try:
            results.append({"ok": render(case)})
        except Exception as e:  # the test compares failures too
            results.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
