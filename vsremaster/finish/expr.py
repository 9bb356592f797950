"""The model's colour composition as VapourSynth `std.Expr` programs (full size, CPU).

The same formulas as `color.lab` (CIE L*a*b* of sRGB, D65), written for Expr, which
evaluates them per pixel in compiled SIMD code: on a CPU that is many times faster than
tensor operations at full size. Programs yield *linear* RGB; the sRGB transfer, the YUV
matrix and the output range are left to the resizer (zimg), which applies the same
IEC 61966-2-1 curve as `color.lab.lab_to_rgb`.

Expr has no variables: `program()` compiles named steps into stack code (`dupN`,
`swapN`), so every intermediate value is computed once per pixel.
"""
from __future__ import annotations

import re

from ..color.lab import AB_LIMIT, RGB_TO_XYZ, RGB_WHITE, WHITE, XYZ_TO_RGB

_EPSILON = 6.0 / 29.0

_BINARY = {"+", "-", "*", "/", "max", "min", "pow", ">", "<", "=", ">=", "<="}
_UNARY = {"abs", "sqrt", "exp", "log", "not"}


def program(steps: list[tuple[str, str]]) -> str:
    """Named RPN steps -> one Expr string whose value is the last step's.

    Each step is (name, rpn); rpn may use earlier steps as `@name`. Every step's value
    stays on the stack and `@name` becomes a `dupN` of it; the extra values are folded
    away at the end (`swap`, `0 *`, `+`), which is exact for finite values.
    """
    out, depth, where = [], 0, {}
    for name, rpn in steps:
        for token in rpn.split():
            if token.startswith("@"):
                out.append(f"dup{depth - 1 - where[token[1:]]}")
                depth += 1
            elif token in _BINARY:
                out.append(token)
                depth -= 1
            elif token == "?":
                out.append(token)
                depth -= 2
            elif token in _UNARY or re.fullmatch(r"swap\d*", token):
                out.append(token)
            else:
                out.append(token)
                depth += 1
        where[name] = depth - 1
    for _ in range(depth - 1):
        out += ["swap", "0", "*", "+"]
    return " ".join(out)


def _num(v: float) -> str:
    return repr(float(v))


def _finv(f: str) -> str:
    """Lab's inverse companding of @f (rpn)."""
    e = _EPSILON
    return f"@{f} {_num(e)} > @{f} @{f} * @{f} * @{f} {_num(4 / 29)} - {_num(3 * e * e)} * ?"


def _lab_steps(l_expr: str, a_expr: str, b_expr: str) -> list[tuple[str, str]]:
    """Steps from L* / 100, a*, b* (rpn each) to linear X, Y, Z."""
    return [("l", l_expr), ("a", a_expr), ("b", b_expr),
            ("fy", "@l 100 * 16 + 116 /"),
            ("fx", "@fy @a 500 / +"),
            ("fz", "@fy @b 200 / - 0 max"),
            ("X", f"{_finv('fx')} {_num(WHITE[0])} *"),
            ("Y", _finv("fy")),
            ("Z", f"{_finv('fz')} {_num(WHITE[2])} *")]


def _model_ab(v: str, saturation: float = 1.0) -> str:
    """a* or b* of model ab `v`, times `saturation` (`compose.saturated`; 1.0: no
    operation), clipped to +-AB_LIMIT."""
    scaled = "" if saturation == 1.0 else f" {_num(saturation)} *"
    return f"{v} 255 * 128 -{scaled} {_num(-AB_LIMIT)} max {_num(AB_LIMIT)} min"


def _finite(v: str) -> str:
    """NaN -> 0 (infinities are clamped by what follows)."""
    return f"{v} {v} = {v} 0 ?"


#: The restored luma from x = input L and y = the restoration's change (clips).
RESTORED_L = "x x = x 0 ? y + 0 max 1 min"


def _grey_lightness(v: str) -> list[tuple[str, str]]:
    """Steps from @v, an sRGB grey's code value, to its L* / 100 (`finish.compose`)."""
    e = 6.0 / 29.0
    return [("glin", f"@{v} 0.04045 > @{v} 0.055 + 1.055 / 2.4 pow @{v} 12.92 / ?"),
            ("fl", f"@glin {_num(e ** 3)} > @glin 0 max {_num(1 / 3)} pow "
                   f"@glin {_num(1 / (3 * e * e))} * {_num(4 / 29)} + ?"),
            ("lstar", "@fl 116 * 16 - 100 /")]


def compose_linear_rgb(channel: int, colour_from_model: bool = True, tone: str = "lab",
                       saturation: float = 1.0) -> str:
    """Linear R, G or B (`channel`) of the composed frame.

    Clips: x = input L (model L in [0, 1], full size), y = the restoration's change of L
    (upscaled), z / a = model a / b (upscaled; with colour_from_model) or Lab a* / b*.
    tone "keep" reads the restored L as an sRGB grey's code value, "lab" as L* / 100.
    saturation scales the model's a*b* (not Lab a* / b* given as they are).
    """
    ab = (_model_ab("z", saturation), _model_ab("a", saturation)) if colour_from_model \
        else ("z", "a")
    restored = RESTORED_L
    if tone == "keep":
        steps = [("v", restored)] + _grey_lightness("v")
        steps += _lab_steps("@lstar", *ab)
    else:
        steps = _lab_steps(restored, *ab)
    m = XYZ_TO_RGB[channel]
    steps.append(("lin", f"@X {_num(m[0])} * @Y {_num(m[1])} * + @Z {_num(m[2])} * + 0 max 1 min"))
    return program(steps)


def _f(t: str) -> str:
    """Lab's companding of @t (kornia's constants)."""
    return (f"@{t} 0.008856 > @{t} 0 max {_num(1 / 3)} pow "
            f"@{t} 7.787 * {_num(4 / 29)} + ?")


def lab_of_linear_rgb(component: int) -> str:
    """Model L (component 0), a* (1) or b* (2) of linear RGB clips x, y, z."""
    steps = [("r", _finite("x")), ("g", _finite("y")), ("bl", _finite("z"))]
    for name, row, white in (("tx", 0, RGB_WHITE[0]), ("ty", 1, 1.0), ("tz", 2, RGB_WHITE[2])):
        m = RGB_TO_XYZ[row]
        steps.append((name, f"@r {_num(m[0])} * @g {_num(m[1])} * + @bl {_num(m[2])} * + "
                            f"{_num(white)} /"))
    steps += [("fx", _f("tx")), ("fy", _f("ty")), ("fz", _f("tz"))]
    steps.append(("out", ["@fy 116 * 16 - 100 /",
                          "@fx @fy - 500 *",
                          "@fy @fz - 200 *"][component]))
    return program(steps)
