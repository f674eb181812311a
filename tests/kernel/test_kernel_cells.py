"""What a cell reads and writes, found from its code (kernelflow.kernel.cells)."""

from __future__ import annotations

import pytest

from kernelflow.kernel.cells import analyze, default_name


class TestInputs:
    @pytest.mark.parametrize(
        ("source", "reads"),
        [
            ("x = 1\nprint(x)", ["print"]),
            ("x = x + 1", ["x"]),
            ("x += 1", ["x"]),
            ("def f(a):\n    return a + b + g(c)\n", ["b", "g", "c"]),
            ("class K:\n    z = y\n    def m(self):\n        return w\n", ["y", "w"]),
            ("lst = [q for q in r if q > t]", ["r", "t"]),
            ("for i in range(n):\n    total += i\n", ["range", "n", "total"]),
            ("if c:\n    z = 1\nprint(z)", ["c", "print", "z"]),
            ("if a:\n    q = 1\nelse:\n    q = 2\nprint(q)", ["a", "print"]),
            ("with open(p) as fh:\n    data = fh.read()\n", ["open", "p"]),
            ("def f():\n    return f()\n", []),
            ("y = await fetch(u)\nz = y", ["fetch", "u"]),
            ("while (line := rd()):\n    n += len(line)", ["rd", "n", "len"]),
            ("f = lambda t: t + u", ["u"]),
            ("import os\nos.getcwd()", []),
        ],
    )
    def test_reads(self, source: str, reads: list[str]) -> None:
        assert list(analyze(source).reads) == reads

    def test_comments_and_whitespace_do_not_change_the_code_hash(self) -> None:
        plain = analyze("x = a + 1\ny = x * 2\n")
        commented = analyze("# load\nx = a+1   # add\n\n\ny  =  x*2\n")
        assert plain.code_hash == commented.code_hash
        assert analyze("x = a + 2\ny = x * 2\n").code_hash != plain.code_hash


class TestOutputs:
    @pytest.mark.parametrize(
        ("source", "outputs"),
        [
            ("a, (b, *c) = d", ["a", "b", "c"]),
            ("x: int = 1", ["x"]),
            ("n += 1", ["n"]),
            ("import os\nfrom m import (a as b, c)", ["os", "b", "c"]),
            ("def f():\n    pass\nclass K:\n    pass", ["f", "K"]),
            ("for i, j in pairs:\n    pass", ["i", "j"]),
            ("with ctx() as (p, q):\n    pass", ["p", "q"]),
            ("(w := v + 1)", ["w"]),
            ("try:\n    pass\nexcept E as e:\n    pass", ["e"]),
            ("def g():\n    global G\n    G = 1\n", ["g", "G"]),
            ("match cmd:\n    case [a, *rest]:\n        pass\n", ["a", "rest"]),
            ("del x", []),
        ],
    )
    def test_outputs(self, source: str, outputs: list[str]) -> None:
        assert list(analyze(source).outputs) == outputs

    def test_top_level_await_is_detected(self) -> None:
        assert analyze("r = await f()").has_top_level_await
        assert not analyze("async def f():\n    await g()\n").has_top_level_await

    def test_syntax_error_propagates(self) -> None:
        with pytest.raises(SyntaxError):
            analyze("x = (")


class TestDefaultName:
    @pytest.mark.parametrize(
        ("source", "name"),
        [
            ("import pandas as pd\ndf = pd.DataFrame()", "df"),
            ("_tmp = 1\nresult = _tmp", "result"),
            ("print('hi')", "cell"),
            ("import time\ntime.sleep(0)", "cell"),
            ("def clean(x):\n    return x", "clean"),
        ],
    )
    def test_default_name(self, source: str, name: str) -> None:
        assert default_name(analyze(source)) == name
