"""What every browser test does on a page: wait for charts, text or a heading, check that
no exception box is shown, and save a full-page screenshot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHART = ".js-plotly-plot"
EXCEPTION = "[data-testid='stException']"
ALERT_ERROR = "[data-testid='stAlertContentError']"
NAV_LINK = "[data-testid='stSidebarNavLink']"


def wait_for_charts(page: Page, count: int, timeout_ms: int = 60_000) -> None:
    """Wait until exactly ``count`` charts are shown (a rerun briefly shows old and new; the
    stepper draws neighbouring steps ahead into hidden charts)."""
    page.wait_for_function(
        f"document.querySelectorAll('{CHART} .main-svg').length >= {count}"
        f" && [...document.querySelectorAll('{CHART}')]"
        f".filter(c => c.checkVisibility({{visibilityProperty: true}})).length === {count}",
        timeout=timeout_ms,
    )


def wait_for_text(page: Page, text: str, timeout_ms: int = 30_000) -> None:
    """Wait until ``text`` is somewhere on the page."""
    page.wait_for_function(f"document.body.innerText.includes({text!r})", timeout=timeout_ms)


def wait_for_heading(page: Page, text: str, timeout_ms: int = 30_000) -> None:
    """Wait until an h3 heading contains ``text``."""
    page.wait_for_function(
        f"[...document.querySelectorAll('h3')].some(h => h.innerText.includes({text!r}))",
        timeout=timeout_ms,
    )


# The tile map's K/V label of the charts that are shown (the step's K/V block).
SHOWN_TILE_LABEL = """
() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(c => c.checkVisibility({visibilityProperty: true}))
  .flatMap(c => [...c.querySelectorAll('.annotation-text')])
  .map(t => t.textContent.replaceAll('\\u200b', ''))
  .find(t => t.startsWith('K')) || ''
"""


def step_heading(page: Page) -> str:
    """The text of the stepper's "Step k of n: ..." heading ('' when none is shown)."""
    return page.evaluate(
        "[...document.querySelectorAll('h3')].map(h => h.innerText)"
        ".find(t => t.startsWith('Step ')) || ''"
    )


_SETTLED = """(quiet) => {
  if (window.__fvMutated === undefined) {  // watch the page from the first call on
    window.__fvMutated = performance.now();
    new MutationObserver(() => { window.__fvMutated = performance.now(); }).observe(
      document.documentElement,
      {subtree: true, childList: true, attributes: true, characterData: true});
  }
  const app = document.querySelector('[data-testid="stApp"]');
  const idle = !app || app.getAttribute('data-test-script-state') === 'notRunning';
  return idle && performance.now() - window.__fvMutated >= quiet;
}"""


def wait_until_settled(page: Page, quiet_ms: int = 400, timeout_ms: int = 60_000) -> None:
    """Wait until no script runs and nothing on the page has changed for ``quiet_ms``: the
    charts are drawn and laid out (a loaded machine waits longer, an idle one less)."""
    page.wait_for_function(_SETTLED, arg=quiet_ms, timeout=timeout_ms)


def go_to_page(page: Page, title: str, timeout_ms: int = 60_000) -> None:
    """Click the sidebar link of the page ``title`` and wait until that page has run."""
    link = page.locator(NAV_LINK, has_text=title).first
    path = urlsplit(link.get_attribute("href") or "/").path
    link.click()
    page.wait_for_function(f"location.pathname === {path!r}", timeout=timeout_ms)
    wait_until_settled(page, timeout_ms=timeout_ms)


def assert_no_exception(page: Page) -> None:
    assert page.locator(EXCEPTION).count() == 0


def screenshot(page: Page, path: Path) -> None:
    """Let the charts settle, save a full-page screenshot at ``path``, check no exception."""
    wait_until_settled(page)
    page.screenshot(path=str(path), full_page=True)
    assert_no_exception(page)


# --- what a person sees inside the charts: overlapping text, colour bars over panels -------

_CHART_BOXES = """(minOverlap) => {
  const visible = (e) => {
    const r = e.getBoundingClientRect();
    const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
      && parseFloat(s.opacity || '1') > 0 && (e.textContent || '').trim() !== '';
  };
  const box = (e) => { const r = e.getBoundingClientRect();
    return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}; };
  const overlap = (a, b) => Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) > minOverlap
    && Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) > minOverlap;
  const found = [];
  document.querySelectorAll('.js-plotly-plot').forEach((gd, chart) => {
    const title = gd.querySelector('.gtitle')?.textContent || `chart ${chart}`;
    const texts = [...gd.querySelectorAll('svg text')].filter(visible)
      .map(e => ({text: e.textContent.trim(), box: box(e)}));
    for (let i = 0; i < texts.length; i++)
      for (let j = i + 1; j < texts.length; j++)
        if (overlap(texts[i].box, texts[j].box))
          found.push(`${title}: text "${texts[i].text}" overlaps "${texts[j].text}"`);
    const panels = [...gd.querySelectorAll('.draglayer .nsewdrag')].map(box);
    gd.querySelectorAll('g.colorbar').forEach((cb) => {
      const b = box(cb.querySelector('rect.cbbg') || cb);
      panels.forEach((p, k) => { if (overlap(b, p))
        found.push(`${title}: a colour bar covers panel ${k}`); });
    });
  });
  return found;
}"""


_CLIPPED = """(slack) => {
  const found = [];
  document.querySelectorAll('.js-plotly-plot').forEach((gd, chart) => {
    if (!gd.checkVisibility({visibilityProperty: true})) return;
    const title = gd.querySelector('.gtitle')?.textContent || `chart ${chart}`;
    const svg = gd.querySelector('svg.main-svg').getBoundingClientRect();
    gd.querySelectorAll('svg text').forEach((t) => {
      const r = t.getBoundingClientRect(), text = (t.textContent || '').trim();
      if (!text || r.width === 0 || getComputedStyle(t).visibility === 'hidden') return;
      if (r.left < svg.left - slack || r.right > svg.right + slack
          || r.top < svg.top - slack || r.bottom > svg.bottom + slack)
        found.push(`${title}: text "${text}" runs past the chart's edge`);
    });
  });
  return found;
}"""


_CUT_TEXT = """() => [...document.querySelectorAll('[data-testid=stMain] *')]
  .filter(e => e.checkVisibility() && [...e.childNodes].some(n => n.nodeType === 3
      && n.textContent.trim()) && !e.closest('.js-plotly-plot, pre, code, .fv-code, math')
    && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
  .map(e => `${e.tagName}: "${e.textContent.trim().slice(0, 60)}" (${e.scrollWidth} px `
    + `of text in ${e.clientWidth} px)`)"""


def cut_text(page: Page) -> list[str]:
    """Every visible text of the main area cut short by its box (an ellipsis or a hidden
    overflow: a label, a chip, a button, an option shown in a select box); code and charts
    excluded. One line each."""
    return page.evaluate(_CUT_TEXT)


def clipped_chart_text(page: Page, slack_px: float = 1.0) -> list[str]:
    """Every visible SVG text of a shown chart that runs past the chart's own edge (cut off
    on screen), one line each, naming the chart by its title."""
    return page.evaluate(_CLIPPED, slack_px)


def chart_overlaps(page: Page, min_overlap_px: float = 2.0) -> list[str]:
    """Every pair of visible SVG texts inside one chart that overlap by more than
    ``min_overlap_px`` in both directions, and every colour bar that covers a panel (plot
    area) of its chart; one line each, naming the chart by its title."""
    return page.evaluate(_CHART_BOXES, min_overlap_px)


# WCAG 2 colour arithmetic for the checks below: rgb() parsing, relative luminance, contrast
_WCAG = """  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const contrast = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05); };
"""

_CHART_TEXT = (
    "([minPx, minContrast, selector]) => {\n"
    + _WCAG
    + """
  let bg = rgb(getComputedStyle(document.querySelector('.stApp')).backgroundColor);
  const found = [];
  document.querySelectorAll(selector).forEach((gd, chart) => {
    const title = gd.querySelector('.gtitle')?.textContent || `chart ${chart}`;
    const panels = [...gd.querySelectorAll('.draglayer .nsewdrag')]
      .map(e => e.getBoundingClientRect());
    gd.querySelectorAll('svg text').forEach((e) => {
      const r = e.getBoundingClientRect();
      const text = (e.textContent || '').trim();
      if (!text || r.width === 0 || getComputedStyle(e).visibility === 'hidden') return;
      const size = parseFloat(getComputedStyle(e).fontSize);
      if (size < minPx - 0.01) found.push(`${title}: "${text}" is ${size} px`);
      const cx = (r.left + r.right) / 2, cy = (r.top + r.bottom) / 2;
      if (panels.some(p => cx > p.left && cx < p.right && cy > p.top && cy < p.bottom))
        return;  // inside a plot area (cell numbers): Plotly picks black or white per cell
      if (e.closest('.updatemenu-button')) return;  // on its button: control_contrast_problems
      const fill = rgb(getComputedStyle(e).fill);
      const alpha = fill.length > 3 ? fill[3] : parseFloat(getComputedStyle(e).fillOpacity);
      const mixed = fill.slice(0, 3).map((v, i) => alpha * v + (1 - alpha) * bg[i]);
      const c = contrast(mixed, bg);
      if (c < minContrast) found.push(`${title}: "${text}" contrast ${c.toFixed(2)}:1`);
    });
  });
  return found;
}"""
)


def chart_text_problems(
    page: Page, min_px: float = 16.0, min_contrast: float = 4.5, selector: str = CHART
) -> list[str]:
    """Every visible SVG text in the charts smaller than ``min_px`` or, outside the plot
    areas, with less than ``min_contrast`` (WCAG) against the app's background."""
    return page.evaluate(_CHART_TEXT, [min_px, min_contrast, selector])


_CONTROL_CONTRAST = (
    "([minText, minLine]) => {\n"
    + _WCAG
    + """
  const shown = (e) => e.getBoundingClientRect().width > 0
    && e.checkVisibility({visibilityProperty: true});
  const found = [];
  document.querySelectorAll('.js-plotly-plot').forEach((gd, chart) => {
    if (!shown(gd)) return;
    const title = gd.querySelector('.gtitle')?.textContent || `chart ${chart}`;
    const paper = rgb(gd.querySelector('.main-svg').style.background);
    gd.querySelectorAll('.updatemenu-button').forEach((b) => {
      const text = b.querySelector('text'), rect = b.querySelector('rect');
      const c = contrast(rgb(getComputedStyle(text).fill), rgb(getComputedStyle(rect).fill));
      if (c < minText) found.push(`${title}: button "${text.textContent}" ${c.toFixed(2)}:1`);
    });
    gd.querySelectorAll('.scatterlayer .trace path.js-line').forEach((p) => {
      if (!shown(p)) return;
      const stroke = getComputedStyle(p).stroke;
      if (!stroke || stroke === 'none') return;
      const c = contrast(rgb(stroke), paper);
      if (c < minLine) found.push(`${title}: a line in ${stroke} ${c.toFixed(2)}:1`);
    });
    // markers and bars: their fill, or for a hollow marker its outline (graphics, 3:1)
    gd.querySelectorAll('.scatterlayer .point, .barlayer .point path').forEach((p) => {
      if (!shown(p)) return;
      const s = getComputedStyle(p);
      const hollow = s.fill === 'none' || rgb(s.fill)[3] === 0 || s.fillOpacity === '0';
      const colour = hollow ? s.stroke : s.fill;
      if (!colour || colour === 'none' || colour.startsWith('url(')  // a pattern: its lines
          || (rgb(colour)[3] ?? 1) < 0.5) return;
      const c = contrast(rgb(colour), paper);
      if (c < minLine) found.push(`${title}: a mark in ${colour} ${c.toFixed(2)}:1`);
    });
  });
  return found;
}"""
)


def control_contrast_problems(
    page: Page, min_text: float = 4.5, min_line: float = 3.0
) -> list[str]:
    """Every chart button whose label has less than ``min_text`` contrast with the button,
    and every drawn line with less than ``min_line`` against its chart's paper (WCAG 1.4.11's
    3:1 for graphics); one line each, naming the chart."""
    return page.evaluate(_CONTROL_CONTRAST, [min_text, min_line])


_PAGE_CONTRAST = (
    "([minText, selector]) => {\n"
    + _WCAG
    + """
  const page = rgb(getComputedStyle(document.querySelector('.stApp')).backgroundColor);
  const over = (top, under) => { const a = top.length > 3 ? top[3] : 1;
    return top.slice(0, 3).map((v, i) => a * v + (1 - a) * under[i]); };
  const background = (e) => {  // the colour behind e: its ancestors' layers over the page
    const r = e.getBoundingClientRect(), x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
    const layers = [];
    for (let n = e; n && n !== document.documentElement; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor), b = n.getBoundingClientRect();
      if (c.length > 3 && c[3] === 0) continue;
      if (x < b.left || x > b.right || y < b.top || y > b.bottom) continue;  // not behind it
      layers.push(c);
      if (c.length === 3 || c[3] === 1) break;
    }
    return layers.reverse().reduce((under, c) => over(c, under), page);
  };
  const opacity = (e) => { let o = 1;
    for (let n = e; n; n = n.parentElement) o *= parseFloat(getComputedStyle(n).opacity);
    return o; };
  const found = [];
  document.querySelectorAll(selector).forEach((root) => root.querySelectorAll('*').forEach((e) => {
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !e.checkVisibility({visibilityProperty: true})
        || e.closest('.js-plotly-plot, .fv-code, [aria-disabled=true], :disabled, math')) return;
    const bg = background(e), ink = rgb(getComputedStyle(e).color);
    if (ink.length > 3 && ink[3] === 0) return;  // transparent: not shown (a hover label)
    const color = over(ink, bg);
    const o = opacity(e);
    if (o < 0.05) return;  // faded out until hovered (a slider's min and max)
    const shown = color.map((v, i) => o * v + (1 - o) * bg[i]);
    const c = contrast(shown, bg);
    if (c < minText) found.push(`${e.tagName}.${String(e.className).slice(0, 30)} `
      + `"${e.textContent.trim().slice(0, 40)}" ${c.toFixed(2)}:1`);
  }));
  return found;
}"""
)


def page_contrast_problems(
    page: Page, min_contrast: float = 4.5, selector: str = "[data-testid=stMain]"
) -> list[str]:
    """Every visible text of the page's main area (labels, buttons, alerts, the step view's
    parts; charts, code and disabled controls left out) with less than ``min_contrast``
    (WCAG) against the colour behind it, opacity included."""
    return page.evaluate(_PAGE_CONTRAST, [min_contrast, selector])
