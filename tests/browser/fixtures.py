"""Nodespecs the browser tests build flows from, imported into each test server (no other data needed)."""

SPECS = {
    "uitest.num.add": {
        "title": "Add numbers",
        "port": {"input": [{"name": "a", "order": 0, "type": "Int"}, {"name": "b", "order": 1, "type": "Int", "default": 1}],
                 "output": [{"name": "out", "type": "Int"}]},
        "func": "def func(a, b=1):\n    return a + b\n",
    },
    "uitest.num.double": {
        "title": "Double",
        "port": {"input": [{"name": "x", "order": 0, "type": "Int", "required": True}], "output": [{"name": "out", "type": "Int"}]},
        "func": "def func(x):\n    print('doubling', x)\n    return x * 2\n",
    },
    "uitest.num.checked": {
        "title": "Checked double",
        "port": {"input": [{"name": "x", "order": 0, "type": "Int", "required": True}], "output": [{"name": "out", "type": "Int"}]},
        # A helper of the node's own raises: the traceback shows both frames (lines 7 and 3), and only those.
        "func": ("def check_positive(x):\n"
                 "    if x < 0:\n"
                 "        raise ValueError(f'{x} is negative')\n"
                 "    return x\n"
                 "\n"
                 "def func(x):\n"
                 "    return check_positive(x) * 2\n"),
    },
    "uitest.text.upper": {
        "title": "Upper case",
        # Markdown, with markup the help panel must not run.
        "description": ("Makes text **upper case**.\n\n- keeps digits\n- keeps `punctuation`\n\n"
                        "<img src=x onerror=\"window.xss = 1\"><script>window.xss = 2</script>"
                        "[a link](javascript:window.xss=3)"),
        "port": {"input": [{"name": "text", "order": 0, "type": "String"}], "output": [{"name": "out", "type": "String"}]},
        "func": "def func(text):\n    return text.upper()\n",
    },
    "uitest.text.format": {
        "title": "Format",
        "port": {"input": [{"name": "template_text", "order": 0, "type": "String", "required": True},
                           {"name": "values", "order": 1, "type": "Dict", "required": True}],
                 "output": [{"name": "out", "type": "String"}]},
        "func": "def func(template_text, values):\n    return template_text.format(**values)\n",
    },
    "uitest.slow.wait": {
        "title": "Wait",
        "port": {"input": [{"name": "seconds", "order": 0, "type": "Float", "default": 60}], "output": [{"name": "out", "type": "Any"}]},
        "func": "import time\n\ndef func(seconds=60):\n    time.sleep(float(seconds))\n    return seconds\n",
        "cache": False,
    },
}


def bundle() -> dict:
    return {"format_version": 2, "nodespec": {sid: {"id": sid, **doc} for sid, doc in SPECS.items()}, "flow": {}}
