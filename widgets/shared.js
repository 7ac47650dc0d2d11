// What every unimem widget shares: colours, the words for flow kinds, number
// formatting, reading the binary payload, and mounting in anywidget's element.
//
// There is no bundler: anywidget loads one ES module per widget, from a string, so
// Python (unimem/views/assets.py, esm()) joins this file and the widget's own files
// into that string. This file therefore only declares: no import, no export; the
// widget's main file holds the module's one default export.

// -- colours ------------------------------------------------------------------------
// One colour per meaning, the same in every widget, and no colour with two meanings.
// Greys are for what unimem cannot see or did not look at; UI ink (text, grid lines,
// the hover outline) is not a meaning and stays neutral in each widget.
const PALETTE = {
  // where work ran: timeline lanes and bars
  cpu: "#1f77b4",
  gpu: "#7b3fbf",
  untracked: "#8a8a8a", // work (and waits on work) on a stream unimem could not see
  // MLX's allocator counters: the timeline's memory lane, MemoryView's panels
  active: "#17becf",
  cache: "#bcbd22",
  peak: "#d62728",
  // where an array's pages live: MemoryView's residency strips
  host: "#2ca02c",
  "not on host": "#ff7f0e",
  shared: "#393b79",
  error: "#8c564b",
  "not probed": "#dddddd",
  // waits between streams: the timeline's arrows
  "cross stream": "#444444",
  "device switch": "#e377c2",
  collective: "#009e73", // the same collective on two ranks of a merged distributed job
  "gpu wait": "#0072b2", // a wait CUDA was asked for (CUPTI's synchronisation records)
  // picked elsewhere, shown here: a chain from Timeline.highlight, MemoryView's rows
  highlight: "#ffb000",
};

// MLX's allocator counters, in the order every widget lists them.
const COUNTERS = ["active", "cache", "peak"];

// The kinds of flow (a wait of one stream for another) that Python names in
// meta.flow_kinds, and how the timeline's legend says them. The keys are Python's
// names: CROSS_STREAM, DEVICE_SWITCH, COLLECTIVE and GPU_WAIT in unimem/model/graph.py,
// and "untracked" (capture/recorder.py) for a wait on work unimem could not place. Each key's
// colour is PALETTE[key]; a kind missing here is drawn like a cross-stream wait.
const FLOWS = {
  "cross stream": "cross-stream wait",
  "device switch": "device switch (a wait across devices)",
  untracked: "wait on untracked work",
  collective: "the same collective on another rank",
  "gpu wait": "a wait CUDA was asked for (event or synchronize)",
};

function flowColor(kind) {
  return PALETTE[kind in FLOWS ? kind : "cross stream"];
}

// -- text: the same as Python's unimem/model/text.py ----------------------------------
// Text repeated from Python must read the same in a widget as in a repr.

// Python's f"{x:.{digits}f}". toFixed rounds the same exact binary value, except that
// it breaks an exact tie (0.125 to 2 digits) away from zero where Python goes to the
// even digit, and it drops the sign of -0. A tie has digits + 1 decimals, the last a
// 5: a double near one without being on it differs from it within 17 + digits more
// places, so 30 more show which it is.
function fixed(x, digits) {
  const sign = x < 0 || Object.is(x, -0) ? "-" : "", m = Math.abs(x);
  const longer = m.toFixed(digits + 30);
  if (/50{29}$/.test(longer)) {
    const down = longer.slice(0, -30).replace(/\.$/, ""); // the tie rounded toward zero
    if (Number(down.at(-1)) % 2 === 0) return sign + down;
  }
  return sign + m.toFixed(digits);
}

// fmt_time: a duration with a unit ("12.34 ms", "56.7 µs", "1.23 s"); "n/a" for
// Python's None (JSON null).
function fmtTime(s) {
  if (!Number.isFinite(s)) return "n/a";
  if (Math.abs(s) >= 1) return `${fixed(s, 2)} s`;
  if (Math.abs(s) >= 1e-3) return `${fixed(s * 1e3, 2)} ms`;
  return `${fixed(s * 1e6, 1)} µs`;
}

// fmt_bytes: a size in binary units ("512 B", "1.5 KiB", "12.0 MiB", "3.2 GiB").
function fmtBytes(n) {
  for (const unit of ["B", "KiB", "MiB"]) {
    if (Math.abs(n) < 1024) return unit === "B" ? `${fixed(n, 0)} B` : `${fixed(n, 1)} ${unit}`;
    n /= 1024;
  }
  return `${fixed(n, 1)} GiB`;
}

// -- the binary payload ---------------------------------------------------------------
// A Bytes trait arrives as a DataView (ipywidgets), an ArrayBuffer, or nothing before
// the first sync: its bytes, not copied.
function bytesOf(v) {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(0);
}

// n elements of typed array class T from byte offset off, copied: a typed array must
// start at a multiple of its element size, which an offset into a message is not.
function column(bytes, T, off, n) {
  return new T(bytes.slice(off, off + n * T.BYTES_PER_ELEMENT).buffer);
}

// The first i in [lo, hi) for which before(i) is false, where before is true on a
// prefix of the range: e.g. i => times[i] < t finds the first time >= t.
function bisect(lo, hi, before) {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(mid)) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// -- the DOM -----------------------------------------------------------------------
const BASE_CSS = `
.unimem-widget { font: 12px system-ui, sans-serif; color: #222; }
.unimem-swatch { display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: middle; }
`;

function element(tag, className = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

// A widget's root <div class="unimem-widget {className}">, holding its own <style>,
// appended to anywidget's el.
function mount(el, className, css) {
  const root = element("div", `unimem-widget ${className}`);
  const style = element("style");
  style.textContent = BASE_CSS + css;
  root.append(style);
  el.append(root);
  return root;
}

// Text made safe to put in innerHTML.
function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

// A legend's colour sample; `css` adds to its style (a border, an opacity).
function swatch(color, css = "") {
  return `<span class="unimem-swatch" style="background:${color};${css}"></span>`;
}
