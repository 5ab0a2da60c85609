"""Draw the README's five schematic figures into ``readme_images/`` (or a folder you name).

    .venv/bin/python scripts/make_figures.py              # writes readme_images/*.png
    .venv/bin/python scripts/make_figures.py /tmp/figs    # writes somewhere else

The figures are diagrams, not results: every number in them is made up to show an idea and each figure says
"illustration" on it. The real numbers come from the notebooks. No model, no network: only numpy and
matplotlib, with fixed settings and no metadata, so running the script twice gives byte-identical PNGs.
``tests/test_figures.py`` re-draws them and checks that the committed files are in sync (the fastbook
practice for derived files); if it fails after you changed this script, run the command above and commit the
new PNGs.

Figures (each 800 px wide, to read at README width):

* ``transformer.png`` — a decoder-only transformer, and where the two debiasing methods act.
* ``bias.png`` — the seed's bias definition ``D = Σ_g |T̄ − T_g|`` on a group bar chart.
* ``decoding.png`` — method 1: next-token probabilities before / after the logits adjustment.
* ``gates.png`` — method 2: a gate ``g = 2σ(z)`` on every head's output before ``o_proj``, and a gate heat-map.
* ``stages.png`` — the four stages of bias mitigation (pre-, in-, intra-, post-processing) and where the course acts.
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed, and the same renderer everywhere

import matplotlib.pyplot as plt  # noqa: E402  (after matplotlib.use)
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "readme_images"
DPI = 100
FIGURES = ("transformer.png", "bias.png", "decoding.png", "gates.png", "stages.png")

# One palette for all four figures.
GREY = "#eceff1"
EDGE = "#37474f"
BLUE = "#d6e9f8"
GREEN = "#dcefd9"
ORANGE = "#fbc987"
ORANGE_DARK = "#e07b00"
RED = "#fdd9d7"
RED_DARK = "#c62828"
MALE = "#3f7fbf"
FEMALE = "#c0504d"
NOTE = "#666666"

RC = {
    # DejaVu Sans ships with matplotlib, so the text renders the same on every machine. It has no CJK
    # glyphs, so the figures are English only (the Chinese terms live in the notebooks and the README).
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "path.simplify": True,
    "svg.hashsalt": "debias-llm",  # irrelevant for PNG, fixed anyway in case someone switches to SVG
    "axes.spines.top": False,
    "axes.spines.right": False,
}


# ------------------------------------------------------------------------------------------------
# Small drawing helpers (data coordinates of an axes with the axis switched off)
# ------------------------------------------------------------------------------------------------

def box(ax, x, y, w, h, text, face=GREY, edge=EDGE, size=8, style="-", weight="normal", lw=1.0):
    """A rounded box with its lower-left corner at (x, y) and centred text; returns its centre."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.8",
                                facecolor=face, edgecolor=edge, linewidth=lw, linestyle=style))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight,
            linespacing=1.15)
    return x + w / 2, y + h / 2


def arrow(ax, start, end, color=EDGE, lw=1.1, style="-|>", ls="-", rad=0.0):
    """An arrow from ``start`` to ``end`` (points in data coordinates)."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=9, color=color, linewidth=lw,
                                 linestyle=ls, shrinkA=0, shrinkB=0,
                                 connectionstyle=f"arc3,rad={rad}"))


def plus(ax, x, y, r=1.6):
    """The residual addition ⊕."""
    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor=EDGE, linewidth=1.0))
    ax.plot([x - r * 0.6, x + r * 0.6], [y, y], color=EDGE, lw=1.0)
    ax.plot([x, x], [y - r * 0.6, y + r * 0.6], color=EDGE, lw=1.0)


def canvas(fig, rect=(0, 0, 1, 1), xlim=(0, 100), ylim=(0, 50)):
    """An axes with no axis, in which 1 data unit has the same length in x and y when the ranges fit."""
    ax = fig.add_axes(rect)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")
    return ax


def stamp(fig, text="illustration: made-up numbers, not a measurement"):
    """The label every illustrative figure carries, bottom right."""
    fig.text(0.995, 0.008, text, ha="right", va="bottom", fontsize=7.5, color=NOTE, style="italic")


# ------------------------------------------------------------------------------------------------
# 1. transformer.png
# ------------------------------------------------------------------------------------------------

def draw_transformer():
    """A decoder-only transformer (the SmolLM2 / Llama layout) and where methods 1 and 2 act."""
    fig = plt.figure(figsize=(8, 4.4))
    ax = canvas(fig, ylim=(0, 55))  # 800 x 440 px: 8 px per unit in both directions

    # Top row: the whole model, left to right.
    top_y, top_h, w, gap = 41.5, 7.0, 9.6, 1.45
    labels = ["token ids", "embedding", "decoder\nblock × N", "final\nRMSNorm", "LM head", "logits z",
              "adjust\nlogits", "softmax", "next token"]
    faces = [GREY, GREY, BLUE, GREY, GREY, GREY, RED, GREY, GREY]
    xs = [0.7 + i * (w + gap) for i in range(len(labels))]
    for i, (x, label, face) in enumerate(zip(xs, labels, faces)):
        method1 = label.startswith("adjust")
        box(ax, x, top_y, w, top_h, label, face=face, edge=RED_DARK if method1 else EDGE,
            style="--" if method1 else "-", weight="bold" if i == 2 else "normal", lw=1.4 if method1 else 1.0)
        if i:
            arrow(ax, (xs[i - 1] + w, top_y + top_h / 2), (x, top_y + top_h / 2))
    ax.text(xs[6] + w / 2, top_y + top_h + 1.3, "① method 1 (notebook 07)\nz′ = z + shift per word group",
            ha="center", va="bottom", fontsize=7.5, color=RED_DARK, weight="bold")
    ax.text(xs[0], top_y + top_h + 1.3, "“The nurse said that”", ha="left", va="bottom",
            fontsize=7.5, color=NOTE)
    ax.text(xs[8] + w, top_y + top_h + 1.3, "“ she” / “ he” …", ha="right", va="bottom", fontsize=7.5,
            color=NOTE)
    ax.text(xs[8] + w / 2, top_y - 1.2, "append, repeat", ha="center", va="top", fontsize=7, color=NOTE)

    # The zoom: one decoder block.
    px0, px1, py0, py1 = 0.7, 99.3, 1.0, 33.5
    ax.add_patch(FancyBboxPatch((px0, py0), px1 - px0, py1 - py0, boxstyle="round,pad=0,rounding_size=1.2",
                                facecolor="#f7fbff", edgecolor="#90a4ae", linewidth=1.0, linestyle="--"))
    for (bx, px) in ((xs[2], px0 + 1.2), (xs[2] + w, px1 - 1.2)):
        ax.plot([bx, px], [top_y, py1], color="#90a4ae", lw=0.8, ls=":")
    ax.text(px0 + 1.2, py1 - 1.2, "one decoder block, repeated N times (N = 30 in SmolLM2-135M)",
            ha="left", va="top", fontsize=8, weight="bold", color=EDGE)

    cy, h = 17.0, 7.0
    items = [("x", 4.6, GREY), ("RMSNorm", 9.0, GREY),
             ("causal multi-head\nself-attention\nheads h1 … h9", 15.5, BLUE),
             ("× gate g\nper head", 8.6, ORANGE), ("o_proj", 7.4, BLUE), ("+", 3.2, None),
             ("RMSNorm", 9.0, GREY), ("MLP", 7.0, GREEN), ("+", 3.2, None), ("x′", 4.6, GREY)]
    gap_in = (px1 - px0 - 2.0 - sum(width for _, width, _ in items)) / (len(items) - 1)
    x = px0 + 1.0
    spans = []
    for text, width, face in items:
        if face is None:
            plus(ax, x + width / 2, cy)
        elif text.startswith("×"):
            box(ax, x, cy - h / 2, width, h, text, face=face, edge=ORANGE_DARK, lw=1.4, weight="bold")
        else:
            box(ax, x, cy - h / 2, width, h, text, face=face)
        spans.append((x, x + width))
        x += width + gap_in
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        arrow(ax, (a1, cy), (b0, cy))
    # The attention sub-layer (self_attn in transformers): attention, the gate we add, and o_proj.
    ax.add_patch(FancyBboxPatch((spans[2][0] - 0.8, cy - h / 2 - 2.6), spans[4][1] - spans[2][0] + 1.6, h + 3.8,
                                boxstyle="round,pad=0,rounding_size=1.0", facecolor="none", edgecolor="#7da7cf",
                                linewidth=0.9, linestyle=":"))
    ax.text(spans[2][0] - 0.3, cy - h / 2 - 1.8, "attention sub-layer (self_attn)", ha="left", va="center",
            fontsize=7, color="#4a77a3")

    # Residual connections: from the block input to the first ⊕, and from the first ⊕ to the second.
    x_src = (spans[0][0] + spans[0][1]) / 2
    ax.plot([x_src, x_src, (spans[5][0] + spans[5][1]) / 2], [cy + h / 2, 27.0, 27.0], color=EDGE, lw=1.0)
    arrow(ax, ((spans[5][0] + spans[5][1]) / 2, 27.0), ((spans[5][0] + spans[5][1]) / 2, cy + 1.6))
    mid1 = (spans[5][1] + spans[6][0]) / 2
    ax.plot([mid1, mid1, (spans[8][0] + spans[8][1]) / 2], [cy, 27.0, 27.0], color=EDGE, lw=1.0)
    arrow(ax, ((spans[8][0] + spans[8][1]) / 2, 27.0), ((spans[8][0] + spans[8][1]) / 2, cy + 1.6))
    ax.text((x_src + (spans[5][0] + spans[5][1]) / 2) / 2, 27.6, "residual", ha="center", va="bottom",
            fontsize=7.5, color=NOTE)
    ax.text((mid1 + (spans[8][0] + spans[8][1]) / 2) / 2, 27.6, "residual", ha="center", va="bottom",
            fontsize=7.5, color=NOTE)

    gate_x = (spans[3][0] + spans[3][1]) / 2
    ax.text(gate_x, 4.2, "② method 2 (notebook 08): gate g = 2σ(z) multiplies each head's output before "
            "o_proj;  z = 0 → g = 1 → the original model", ha="center", va="center", fontsize=7.5,
            color=ORANGE_DARK, weight="bold")
    arrow(ax, (gate_x, 5.6), (gate_x, cy - h / 2), color=ORANGE_DARK)
    return fig


# ------------------------------------------------------------------------------------------------
# 2. bias.png
# ------------------------------------------------------------------------------------------------

def draw_bias():
    """The seed's bias definition: group means T_g, their mean T̄, and D = Σ_g |T̄ − T_g|."""
    groups = ["group A", "group B", "group C", "group D"]
    t = np.array([0.30, 0.18, 0.10, 0.22])  # made up; chosen so the arithmetic is easy to follow
    t_bar = t.mean()
    gaps = np.abs(t_bar - t)

    fig = plt.figure(figsize=(8, 3.8))
    ax = fig.add_axes((0.075, 0.13, 0.5, 0.74))
    xs = np.arange(len(groups))
    ax.bar(xs, t, width=0.55, color=["#8fb8de", "#a9cfa4", "#f2c38b", "#c9a6d8"], edgecolor=EDGE, lw=0.8)
    ax.axhline(t_bar, color=EDGE, ls="--", lw=1.2)
    ax.text(0.62, t_bar + 0.005, r"$\bar{T}$ = mean of group means = " + f"{t_bar:.2f}",
            ha="left", va="bottom", fontsize=8)
    for x, value, gap in zip(xs, t, gaps):
        ax.add_patch(FancyArrowPatch((x + 0.36, t_bar), (x + 0.36, value), arrowstyle="<|-|>",
                                     mutation_scale=7, color=RED_DARK, lw=1.1, shrinkA=0, shrinkB=0))
        ax.text(x + 0.42, (t_bar + value) / 2, f"{gap:.2f}", ha="left", va="center", fontsize=8,
                color=RED_DARK)
        ax.text(x, value / 2, f"$T_{{{groups[x][-1]}}}$\n{value:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(xs, groups)
    ax.set_xlim(-0.5, len(groups) - 0.2)
    ax.set_ylim(0, 0.36)
    ax.set_ylabel("mean toxicity of continuations  $T_g$")
    ax.set_title("Toxicity per social group (illustration)", loc="left")

    side = canvas(fig, rect=(0.6, 0.05, 0.39, 0.88), ylim=(0, 100))
    lines = [
        (92, "What bias means here", dict(weight="bold", fontsize=10)),
        (80, "1. Prompt the model about each group g,", {}),
        (73, "    score every continuation's toxicity.", {}),
        (64, r"2. $T_g$ = mean toxicity for group g.", {}),
        (55, r"3. $\bar{T} = \frac{1}{G}\sum_g T_g$ = " + f"{t_bar:.2f}", {}),
        (44, r"4. Bias $D = \sum_g\,|\bar{T} - T_g|$", dict(weight="bold")),
        (36, "    = " + " + ".join(f"{g:.2f}" for g in gaps) + f" = {gaps.sum():.2f}", dict(color=RED_DARK)),
        (25, "D = 0: every group gets the same toxicity.", {}),
        (18, "Larger D: the model treats groups less alike.", {}),
        (7, "debias_utils.metrics.group_disparity, notebook 06", dict(color=NOTE, fontsize=7.5)),
    ]
    for y, text, kw in lines:
        side.text(2, y, text, ha="left", va="center", **{"fontsize": 8.5, **kw})
    stamp(fig)
    return fig


# ------------------------------------------------------------------------------------------------
# 3. decoding.png
# ------------------------------------------------------------------------------------------------

def kl_shift_two_groups(p_male, p_female, target_male):
    """Logit shifts (s_m, s_f) that give the male words the share ``target_male`` of the gendered mass.

    The minimal-KL shift of ``debias_utils.decoding.kl_shift`` for two groups, in numpy:
    ``η = logit(r) − log(P_m / P_f)``, ``s_m = η (1 − r)``, ``s_f = −η r``.
    """
    eta = np.log(target_male / (1 - target_male)) - np.log(p_male / p_female)
    return eta * (1 - target_male), -eta * target_male


def draw_decoding():
    """Method 1: the next-token distribution before and after the logits adjustment, and the word counter."""
    tokens = [" she", " he", " her", " the", " it", " I", " they"]
    male = np.array([False, True, False, False, False, False, False])
    female = np.array([True, False, True, False, False, False, False])
    before = np.array([0.36, 0.08, 0.04, 0.12, 0.07, 0.06, 0.05])  # made up; the rest of the vocabulary: 0.22
    rest = 1.0 - before.sum()
    counts = {"male words": 2, "female words": 6}  # counted in the text generated so far (made up)
    # The "kl" rule's target for this step: r* = t + (t·C − c_male) / horizon, here t = 0.5, C = 8, horizon = 8:
    # male words are behind, so this step aims above one half (the package's default horizon is shorter).
    total, horizon = sum(counts.values()), 8.0
    target = 0.5 + (0.5 * total - counts["male words"]) / horizon
    s_m, s_f = kl_shift_two_groups(before[male].sum(), before[female].sum(), target)
    logits = np.log(before) + np.where(male, s_m, 0.0) + np.where(female, s_f, 0.0)
    after = np.exp(logits) / (np.exp(logits).sum() + rest)

    fig = plt.figure(figsize=(8, 3.8))
    ax = fig.add_axes((0.075, 0.14, 0.55, 0.7))
    xs = np.arange(len(tokens))
    ax.bar(xs - 0.19, before, width=0.38, color="#b0bec5", edgecolor=EDGE, lw=0.6, label="before: softmax(z)")
    colors = [MALE if m else FEMALE if f else "#78909c" for m, f in zip(male, female)]
    ax.bar(xs + 0.19, after, width=0.38, color=colors, edgecolor=EDGE, lw=0.6)
    for x, b, a in zip(xs, before, after):
        ax.text(x - 0.19, b + 0.006, f"{b:.2f}", ha="center", va="bottom", fontsize=7)
        ax.text(x + 0.19, a + 0.006, f"{a:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, [repr(t)[1:-1].replace(" ", "␣") for t in tokens])
    for label, m, f in zip(ax.get_xticklabels(), male, female):
        label.set_color(MALE if m else FEMALE if f else EDGE)
    ax.set_ylabel("next-token probability")
    ax.set_ylim(0, 0.42)
    ax.set_title("Prompt: “The nurse said that”  →  next token", loc="left")
    handles = [Patch(facecolor="#b0bec5", edgecolor=EDGE, lw=0.6, label="before: softmax(z)"),
               Patch(facecolor="#78909c", edgecolor=EDGE, lw=0.6, label="after: softmax(z′)"),
               Patch(facecolor=MALE, edgecolor=EDGE, lw=0.6, label="  male word, after"),
               Patch(facecolor=FEMALE, edgecolor=EDGE, lw=0.6, label="  female word, after")]
    ax.legend(handles=handles, loc="upper right", frameon=False)
    ax.text(0.99, 0.6, f"z′ = z + {s_m:.2f} for male words\nz′ = z − {-s_f:.2f} for female words\n"
            "other tokens keep their odds", transform=ax.transAxes, ha="right", va="top", fontsize=7.5,
            color=EDGE)

    side = fig.add_axes((0.75, 0.4, 0.22, 0.3))
    names = list(counts)
    side.barh([n.split()[0] for n in names], [counts[n] for n in names], color=[MALE, FEMALE], edgecolor=EDGE,
              lw=0.6, height=0.55)
    for i, n in enumerate(names):
        side.text(counts[n] + 0.15, i, str(counts[n]), va="center", fontsize=8)
    side.set_xlim(0, 8)
    side.invert_yaxis()
    side.set_xlabel("words generated so far", fontsize=8)
    side.set_title("running counter", fontsize=9, loc="left")
    fig.text(0.68, 0.25, f"male share so far {counts['male words'] / total:.2f} < target 0.50\n"
             f"→ this step aims at a male share of {target:.2f}\n   of the he/she probability mass",
             fontsize=7.5, va="top", color=EDGE)
    fig.text(0.68, 0.8, "① method 1: adjust the logits\nwhile decoding, notebook 07", fontsize=8, va="bottom",
             color=RED_DARK, weight="bold")
    stamp(fig)
    return fig


# ------------------------------------------------------------------------------------------------
# 4. gates.png
# ------------------------------------------------------------------------------------------------

def illustrative_gates(layers=30, heads=9):
    """A made-up (layer × head) gate matrix: mostly near 1, a few heads turned down, one turned up."""
    layer = np.arange(layers)[:, None]
    head = np.arange(heads)[None, :]
    gates = 1.0 + 0.08 * np.sin(1.7 * layer + 2.3 * head) * np.cos(0.9 * layer - 1.1 * head)
    for (l, h), value in {(3, 5): 0.22, (7, 1): 0.55, (12, 2): 0.35, (18, 6): 0.6, (21, 7): 0.45,
                          (26, 0): 0.7, (15, 4): 1.45}.items():
        gates[l, h] = value
    return gates


def draw_gates():
    """Method 2: one attention layer with a gate on every head, and a gate heat-map (layer × head)."""
    fig = plt.figure(figsize=(8, 4.0))
    ax = canvas(fig, rect=(0.0, 0.04, 0.5, 0.88), xlim=(0, 50), ylim=(0, 44))
    heads = 9
    ys = [41.5 - i * 2.95 for i in range(heads)]
    mid = (ys[0] + ys[-1]) / 2
    box(ax, 0.5, mid - 4.5, 7.5, 9, "input x\n(after\nRMSNorm)", size=7.5)
    box(ax, 38.5, mid - 4.5, 6.5, 9, "o_proj", face=BLUE)
    ax.text(45.6, mid, "→ out", ha="left", va="center", fontsize=8)
    for i, y in enumerate(ys):
        arrow(ax, (8.0, mid), (11.5, y), color="#90a4ae", lw=0.7)
        box(ax, 11.5, y - 1.2, 11, 2.4, f"head h{i + 1}: attn·V", face=BLUE, size=6.5)
        arrow(ax, (22.5, y), (26.3, y), lw=0.8)
        ax.add_patch(Circle((27.8, y), 1.45, facecolor=ORANGE, edgecolor=ORANGE_DARK, lw=1.1))
        ax.text(27.8, y, f"×g{i + 1}", ha="center", va="center", fontsize=5.8, weight="bold")
        arrow(ax, (29.25, y), (38.5, mid), color="#90a4ae", lw=0.7)
    ax.text(34.0, 43.3, "concatenate", ha="center", va="center", fontsize=7, color=NOTE)
    ax.text(1.0, 12.0, "g = 2σ(z): one learned z per (layer, head)", fontsize=8, weight="bold",
            color=ORANGE_DARK)
    ax.text(1.0, 8.6, "z = 0 → g = 1: the original model, exactly", fontsize=8)
    ax.text(1.0, 5.2, "g < 1 turns a head down; g = 0 prunes it", fontsize=8)
    ax.text(1.0, 1.8, "② method 2: gated attention, notebook 08", fontsize=8, color=ORANGE_DARK, weight="bold")

    gates = illustrative_gates()
    hm = fig.add_axes((0.55, 0.2, 0.33, 0.62))
    image = hm.imshow(gates.T, cmap="RdBu", vmin=0.0, vmax=2.0, aspect="auto", interpolation="nearest")
    hm.set_xticks(range(0, gates.shape[0], 5))
    hm.set_yticks(range(gates.shape[1]), [f"h{i + 1}" for i in range(gates.shape[1])])
    hm.set_xlabel("layer")
    hm.set_ylabel("head")
    hm.set_title("gate values after training (illustration)", fontsize=9, loc="left")
    hm.tick_params(length=2)
    bar = fig.colorbar(image, cax=fig.add_axes((0.9, 0.2, 0.015, 0.62)))
    bar.set_label("gate g", fontsize=8)
    bar.set_ticks([0, 0.5, 1, 1.5, 2])
    fig.text(0.55, 0.075, "white: g ≈ 1 (unchanged);  red: g < 1 (turned down);  blue: g > 1",
             fontsize=7.5, color=NOTE)
    stamp(fig)
    return fig


# ------------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------------
# 5. stages.png
# ------------------------------------------------------------------------------------------------

def draw_stages():
    """The lab README's four stages of bias mitigation along the life of a model, and where the course acts."""
    fig = plt.figure(figsize=(8, 3.1))
    ax = canvas(fig, ylim=(0, 38.5))  # 800 x 310 px
    steps = ["training data", "training", "model, while it\ngenerates", "generated text"]
    stages = [("pre-processing", "augment or rebalance\nthe data (e.g. swap\n“he” ↔ “she”)", GREY, EDGE),
              ("in-training", "change the loss or the\narchitecture (e.g. a\nfairness term)", GREY, EDGE),
              ("intra-processing", "act at inference on a\ntrained model: ① adjust\nlogits, ② gate heads",
               ORANGE, ORANGE_DARK),
              ("post-processing", "rewrite the output\n(e.g. filter or\nparaphrase it)", GREY, EDGE)]
    w, gap, x0 = 21.6, 3.6, 1.4
    for i, (step, (name, example, face, edge)) in enumerate(zip(steps, stages)):
        x = x0 + i * (w + gap)
        box(ax, x, 25.0, w, 6.5, step, face=BLUE)
        if i:
            arrow(ax, (x - gap, 28.25), (x, 28.25))
        ours = face == ORANGE
        box(ax, x, 3.5, w, 15.5, f"{name}\n\n{example}", face=face, edge=edge, lw=1.5 if ours else 1.0,
            weight="bold" if ours else "normal", size=7.6)
        arrow(ax, (x + w / 2, 19.0), (x + w / 2, 25.0), color=edge, style="-")
    ax.text(x0 + 2 * (w + gap) + w / 2, 1.2, "this course: notebooks 07 and 08", ha="center", va="center",
            fontsize=7.5, color=ORANGE_DARK, weight="bold")
    ax.text(x0, 34.5, "Four places to reduce bias (the lab README's mitigation stages)", ha="left", va="center",
            fontsize=9, weight="bold", color=EDGE)
    return fig


DRAWERS = {"transformer.png": draw_transformer, "bias.png": draw_bias, "decoding.png": draw_decoding,
           "gates.png": draw_gates, "stages.png": draw_stages}


def make_figures(out_dir=DEFAULT_OUT) -> list[Path]:
    """Draw the README figures into ``out_dir``; return the paths written.

    Example: ``make_figures("/tmp/figs")`` → ``[/tmp/figs/transformer.png, ...]``. Deterministic: the same
    matplotlib and numpy give byte-identical files (no timestamps, no "Software" tag).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; pass a folder to write the figures into")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with plt.rc_context():
        matplotlib.rcdefaults()  # ignore any matplotlibrc or style of the user: the bytes must not depend on it
        plt.rcParams.update(RC)
        for name in FIGURES:
            fig = DRAWERS[name]()
            path = out / name
            fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
            plt.close(fig)
            written.append(path)
    return written


def main(argv=None) -> int:
    """Command line: ``python scripts/make_figures.py [OUT_DIR]`` (default ``readme_images/``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: python scripts/make_figures.py [OUT_DIR]   (default: readme_images/)", file=sys.stderr)
        return 2
    for path in make_figures(args[0] if args else DEFAULT_OUT):
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
