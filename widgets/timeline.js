// unimem timeline: lanes per stream, a bar per op, arrows for cross-stream waits,
// a memory lane per recording. Python (unimem/_pack.py) sends columns of numbers in
// one bytes buffer plus a JSON meta; this module only draws them on a canvas.
// Bars narrower than a pixel are summed per pixel column per lane (level of
// detail), so the cost of a frame is bounded by the canvas width, not the op count.
//
// Model state (written by unimem/views/timeline.py). Data, not display text: the
// words and colours are chosen here.
//   _meta      JSON: recordings [{label, title, placement: {parameter: device}, method,
//              timing: null or {plain_median, wall, makespan} (seconds), ops_total,
//              ops: [first bar, count], measured_starts, in_flight, flows: [..],
//              memory: [..]}], lanes [{recording, lane, name, label, device}],
//              flow_kinds (names), strings, arrays {name: [byte offset, length,
//              "f8"|"i4"|"u1"]}, n_ops, n_flows, n_memory, now.
//   _payload   bytes: columns start, end (NaN: in flight), nbytes, row (lane), name and
//              info (string table), id (op id), flags (1 start measured, 2 in flight),
//              flow_src, flow_dst (bar indices), flow_kind (index into flow_kinds),
//              mem_t/active/cache/peak.
//   _highlight bar indices of a chain to draw highlighted (e.g. a critical path).
//   hovered    written here: op id under the mouse in recording 0, -1 for none.

const ROW_H = 22, MEM_H = 56, HEAD_H = 32, GAP = 8, AXIS_H = 22, LABEL_W = 190;
const COLORS = { gpu: "#7b3fbf", cpu: "#1f77b4", "?": "#8a8a8a" };
const MEM_COLORS = { active: "#1f77b4", cache: "#2ca02c", peak: "#d62728" };
const FLOW_COLORS = { "cross stream": "#444", "device switch": "#d62728", untracked: "#8a8a8a" };
const HIGHLIGHT = "#ff9800";
const TYPES = { f8: Float64Array, i4: Int32Array, u1: Uint8Array };
const START_MEASURED = 1, IN_FLIGHT = 2;
const OPEN_MIN = 14; // px: an op still running is visible even when it just started

const CSS = `
.unimem-timeline { font: 12px/1.3 system-ui, sans-serif; color: #222; position: relative; }
.unimem-timeline-head { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 2px 0 4px; color: #444; }
.unimem-timeline-head .sw { display: inline-block; width: 14px; height: 9px; margin-right: 4px; vertical-align: middle; }
.unimem-timeline-stage { position: relative; }
.unimem-timeline-canvas { position: absolute; top: 0; cursor: grab; }
.unimem-timeline-overlay { position: absolute; top: 0; pointer-events: none; }
.unimem-lane-label, .unimem-memory-label { position: absolute; left: 0; height: ${ROW_H}px; line-height: ${ROW_H}px;
  width: ${LABEL_W - 6}px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; font-size: 11px; }
.unimem-memory-label { height: ${MEM_H}px; line-height: 14px; color: #555; }
.unimem-device { display: inline-block; padding: 0 4px; margin-right: 4px; border-radius: 3px; color: #fff;
  font-weight: 600; font-size: 10px; line-height: 15px; }
.unimem-recording-title { position: absolute; left: 0; right: 0; height: ${HEAD_H}px; overflow: hidden;
  white-space: nowrap; text-overflow: ellipsis; font-size: 11px; color: #555; pointer-events: none;
  background: #fff; z-index: 1; }
.unimem-recording-title b { color: #222; font-size: 12px; }
.unimem-tooltip { position: absolute; display: none; pointer-events: none; background: #fffffa; border: 1px solid #aaa;
  border-radius: 3px; padding: 4px 6px; font-size: 11px; white-space: pre; box-shadow: 0 1px 4px rgba(0,0,0,.2); z-index: 2; }
`;

// -- formatting (same rules as unimem/_recording.py) ---------------------------
function fmtTime(s) {
  if (!Number.isFinite(s)) return "n/a";
  if (s >= 1) return `${s.toFixed(2)} s`;
  if (s >= 1e-3) return `${(s * 1e3).toFixed(2)} ms`;
  return `${(s * 1e6).toFixed(1)} µs`;
}
function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < 3) { n /= 1024; i++; }
  return i === 0 ? `${n.toFixed(0)} B` : `${n.toFixed(1)} ${units[i]}`;
}
function tickLabel(t, step) {
  const [unit, name] = step >= 1 ? [1, "s"] : step >= 1e-3 ? [1e-3, "ms"] : step >= 1e-6 ? [1e-6, "µs"] : [1e-9, "ns"];
  const digits = Math.max(0, -Math.floor(Math.log10(step / unit) + 1e-9));
  return `${(t / unit).toFixed(digits)} ${name}`;
}
// How a recording's starts were timed, as Timeline's repr says it (ends are measured).
function startsWords(rec) {
  const n = rec.ops[1], m = rec.measured_starts;
  if (!n) return "";
  return m === n ? "measured starts" : m === 0 ? "derived starts" : "derived and measured starts";
}

// How the recording was made and what looking cost, from its plain runs' median.
function fidelityLines(rec) {
  const lines = [rec.method], t = rec.timing;
  if (!t) return lines;
  const times = (s) => `${(s / t.plain_median).toFixed(2)}× the plain median`;
  if (t.wall !== null) lines.push(`instrumented run ${fmtTime(t.wall)} = ${times(t.wall)}`);
  if (t.makespan !== null) {
    lines.push(`timeline makespan ${fmtTime(t.makespan)}` + (t.makespan ? ` = ${times(t.makespan)}` : ""));
  }
  return lines;
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

// -- the payload --------------------------------------------------------------
function bytesOf(v) {
  if (!v) return new Uint8Array(0);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(0);
}

function decode(meta, raw) {
  const bytes = bytesOf(raw), cols = {};
  for (const [name, [off, n, dt]] of Object.entries(meta.arrays || {})) {
    const T = TYPES[dt];
    cols[name] = new T(bytes.slice(off, off + n * T.BYTES_PER_ELEMENT).buffer); // aligned copy
  }
  const n = meta.n_ops || 0, lanes = meta.lanes || [];
  const now = meta.now || 0;
  const end = new Float64Array(n); // in-flight bars end at "now"
  let t0 = Infinity, t1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const e = cols.end[i];
    end[i] = Number.isNaN(e) ? Math.max(now, cols.start[i]) : e;
    if (cols.start[i] < t0) t0 = cols.start[i];
    if (end[i] > t1) t1 = end[i];
  }
  const memT = cols.mem_t || new Float64Array(0);
  let memTop = 1;
  for (let i = 0; i < memT.length; i++) {
    t0 = Math.min(t0, memT[i]); t1 = Math.max(t1, memT[i]);
    memTop = Math.max(memTop, cols.mem_active[i], cols.mem_cache[i], cols.mem_peak[i]);
  }
  if (!Number.isFinite(t0)) { t0 = 0; t1 = 1e-3; }
  if (t1 <= t0) t1 = t0 + 1e-6;
  // per lane: bar indices sorted by start, and the longest bar (bounds searches)
  const counts = new Int32Array(lanes.length);
  for (let i = 0; i < n; i++) counts[cols.row[i]]++;
  const byRow = lanes.map((_, r) => new Int32Array(counts[r]));
  const fill = new Int32Array(lanes.length);
  for (let i = 0; i < n; i++) { const r = cols.row[i]; byRow[r][fill[r]++] = i; }
  const maxDur = new Float64Array(lanes.length);
  byRow.forEach((idx, r) => {
    let sorted = true;
    for (let k = 1; k < idx.length; k++) if (cols.start[idx[k]] < cols.start[idx[k - 1]]) { sorted = false; break; }
    if (!sorted) idx.sort((a, b) => cols.start[a] - cols.start[b]);
    for (let k = 0; k < idx.length; k++) maxDur[r] = Math.max(maxDur[r], end[idx[k]] - cols.start[idx[k]]);
  });
  const pad = (t1 - t0) * 0.02;
  return { meta, cols, end, byRow, maxDur, n, memTop, full: [t0 - pad, t1 + pad] };
}

// first i in [lo, hi) with xs[i] >= t (xs sorted there)
function lowerBoundFlat(xs, lo, hi, t) {
  while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid] < t) lo = mid + 1; else hi = mid; }
  return lo;
}

// first k in idx (sorted by start) with start >= t
function lowerBound(idx, start, t) {
  let lo = 0, hi = idx.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (start[idx[mid]] < t) lo = mid + 1; else hi = mid; }
  return lo;
}

function niceStep(span, target) {
  const raw = span / Math.max(1, target), p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

// -- the view -----------------------------------------------------------------
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "unimem-timeline";
  const style = document.createElement("style");
  style.textContent = CSS;
  const head = document.createElement("div");
  head.className = "unimem-timeline-head";
  const stage = document.createElement("div");
  stage.className = "unimem-timeline-stage";
  const canvas = document.createElement("canvas");
  canvas.className = "unimem-timeline-canvas";
  canvas.style.left = `${LABEL_W}px`;
  const overlay = document.createElement("canvas");
  overlay.className = "unimem-timeline-overlay";
  overlay.style.left = `${LABEL_W}px`;
  const labels = document.createElement("div");
  const tooltip = document.createElement("div");
  tooltip.className = "unimem-tooltip";
  stage.append(labels, canvas, overlay, tooltip);
  root.append(style, head, stage);
  el.appendChild(root);

  let data = null, layout = null, view = null, userView = false;
  let width = 0, height = 0, frame = 0, reload = true, hoverBar = -1, draws = 0;

  function layoutFor(d) {
    const laneY = new Float64Array(d.meta.lanes.length), memY = [], headY = [];
    let y = AXIS_H;
    d.meta.recordings.forEach((rec, r) => {
      headY.push(y); y += HEAD_H;
      d.meta.lanes.forEach((lane, row) => { if (lane.recording === r) { laneY[row] = y; y += ROW_H; } });
      memY.push(rec.memory[1] > 0 ? y : -1);
      if (rec.memory[1] > 0) y += MEM_H;
      y += GAP;
    });
    return { laneY, memY, headY, height: y };
  }

  function buildDom() {
    const { meta } = data;
    const devices = new Set(meta.lanes.map((l) => l.device));
    const anyDerived = meta.recordings.some((r) => r.measured_starts < r.ops[1]);
    const anyMeasured = meta.recordings.some((r) => r.measured_starts > 0);
    const anyFlight = meta.recordings.some((r) => r.in_flight > 0);
    const sw = (c, extra = "") => `<span class="sw" style="background:${c};${extra}"></span>`;
    head.innerHTML = [
      ...[...devices].map((d) => `<span>${sw(COLORS[d] || COLORS["?"])}${d === "?" ? "untracked" : d.toUpperCase()} stream</span>`),
      anyDerived ? `<span>${sw("#1f77b4", "opacity:.45;border-right:3px solid #1f77b4")}bar: derived start → measured end</span>` : "",
      anyMeasured ? `<span>${sw("#1f77b4")}bar: measured start and end</span>` : "",
      meta.n_flows ? `<span>→ cross-stream wait (red: device switch)</span>` : "",
      anyFlight ? `<span>${sw("transparent", "border:1px dashed #555;border-right:none")}in flight (open end)</span>` : "",
      `<span style="color:#888">wheel: zoom · drag: pan · double-click: reset</span>`,
    ].join("");
    labels.innerHTML = "";
    meta.recordings.forEach((rec, r) => {
      const t = document.createElement("div");
      t.className = "unimem-recording-title";
      t.style.top = `${layout.headY[r]}px`;
      const shown = rec.ops[1] < rec.ops_total ? `showing last ${rec.ops[1]} of ${rec.ops_total} ops` : `${rec.ops[1]} ops`;
      const flight = rec.in_flight ? ` · ${rec.in_flight} in flight` : "";
      const title = rec.label !== rec.title ? `${rec.label}: ${rec.title}` : rec.title;
      const starts = startsWords(rec), lines = fidelityLines(rec);
      const how = starts ? [`measured ends, ${starts}`] : [];
      const facts = [shown + flight, ...how, ...lines.slice(1)].join(" · ");
      // parameter names are identifiers, never index-like keys: JS keeps their order
      const placement = Object.entries(rec.placement).map(([k, v]) => `${k}=${v}`).join(", ");
      t.innerHTML = `<b>${esc(title)}</b>${placement ? ` (${esc(placement)})` : ""} · ${esc(facts)}` +
        `<br>${esc(lines[0])}`;
      t.title = lines.join("\n");
      labels.appendChild(t);
    });
    meta.lanes.forEach((lane, row) => {
      const l = document.createElement("div");
      l.className = "unimem-lane-label";
      l.style.top = `${layout.laneY[row]}px`;
      l.dataset.device = lane.device;
      const dev = lane.device === "?" ? "?" : lane.device.toUpperCase();
      l.innerHTML = `<span class="unimem-device" style="background:${COLORS[lane.device] || COLORS["?"]}">${dev}</span>${esc(lane.label)}`;
      l.title = lane.label;
      labels.appendChild(l);
    });
    layout.memY.forEach((y, r) => {
      if (y < 0) return;
      const l = document.createElement("div");
      l.className = "unimem-memory-label";
      l.style.top = `${y}px`;
      l.innerHTML = `memory (MLX, global)<br>` +
        Object.entries(MEM_COLORS).map(([k, c]) => `<span style="color:${c}">${k === "peak" ? "┄" : "—"} ${k}</span>`).join(" ");
      labels.appendChild(l);
    });
  }

  function resize() {
    const w = Math.max(200, (root.clientWidth || el.clientWidth || 900) - LABEL_W - 4);
    const h = layout ? layout.height : 100;
    if (w === width && h === height) return false;
    width = w; height = h;
    const dpr = window.devicePixelRatio || 1;
    for (const c of [canvas, overlay]) {
      c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
      c.style.width = `${w}px`; c.style.height = `${h}px`;
    }
    stage.style.height = `${h}px`;
    return true;
  }

  function load() {
    data = decode(model.get("_meta") || {}, model.get("_payload"));
    layout = layoutFor(data);
    if (!userView || !view) view = data.full.slice();
    buildDom();
    resize();
    hoverBar = -2; // bars were renumbered: clear the old hover, its outline and tooltip
    setHover(-1);
    showTip(null);
  }

  const xOf = (t) => ((t - view[0]) / (view[1] - view[0])) * width;
  const tOf = (x) => view[0] + (x / width) * (view[1] - view[0]);

  function draw() {
    const t0 = performance.now();
    const ctx = canvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const { cols, end, byRow, maxDur, meta } = data;
    const start = cols.start, flags = cols.flags;
    drawAxis(ctx);
    let bars = 0;
    const cover = new Float32Array(width + 1);
    meta.lanes.forEach((lane, row) => {
      const y = layout.laneY[row], color = COLORS[lane.device] || COLORS["?"];
      ctx.fillStyle = row % 2 ? "#f7f7f7" : "#fbfbfb";
      ctx.fillRect(0, y, width, ROW_H);
      const idx = byRow[row];
      let k = lowerBound(idx, start, view[0] - maxDur[row]);
      cover.fill(0);
      let cmin = width, cmax = -1;
      const solid = new Path2D(), light = new Path2D(), edge = new Path2D(), open = new Path2D();
      for (; k < idx.length; k++) {
        const i = idx[k], s = start[i];
        if (s > view[1]) break;
        const e = end[i];
        if (e < view[0]) continue;
        bars++;
        const inFlight = flags[i] & IN_FLIGHT;
        const x0 = Math.max(-2, xOf(s));
        const x1 = Math.min(width + 2, inFlight ? Math.max(xOf(e), xOf(s) + OPEN_MIN) : xOf(e));
        if (x1 - x0 < 1 && !inFlight) { // level of detail: sum coverage per pixel column
          const c = Math.min(width, Math.max(0, Math.floor(x0)));
          cover[c] += Math.max(x1 - x0, 0.1);
          if (c < cmin) cmin = c;
          if (c > cmax) cmax = c;
        } else if (inFlight) {
          open.moveTo(x1, y + 4); open.lineTo(x0, y + 4); open.lineTo(x0, y + ROW_H - 4); open.lineTo(x1, y + ROW_H - 4);
          open.moveTo(x1 - 4, y + 7); open.lineTo(x1, y + ROW_H / 2); open.lineTo(x1 - 4, y + ROW_H - 7);
        } else if (flags[i] & START_MEASURED) {
          solid.rect(x0, y + 4, Math.max(1, x1 - x0 - 0.5), ROW_H - 8);
        } else {
          light.rect(x0, y + 4, Math.max(1, x1 - x0 - 0.5), ROW_H - 8);
          edge.rect(Math.max(x0, x1 - 2), y + 4, Math.min(2, x1 - x0), ROW_H - 8);
        }
      }
      ctx.fillStyle = color;
      ctx.globalAlpha = 0.45; ctx.fill(light);
      ctx.globalAlpha = 1; ctx.fill(solid); ctx.fill(edge);
      ctx.strokeStyle = color; ctx.setLineDash([3, 2]); ctx.lineWidth = 1.2; ctx.stroke(open); ctx.setLineDash([]);
      for (const [lo, hi, alpha] of [[0, 0.34, 0.35], [0.34, 0.67, 0.65], [0.67, Infinity, 1]]) {
        const p = new Path2D();
        for (let c = cmin; c <= cmax; c++) if (cover[c] > lo && cover[c] <= hi) p.rect(c, y + 4, 1, ROW_H - 8);
        ctx.globalAlpha = alpha; ctx.fill(p);
      }
      ctx.globalAlpha = 1;
    });
    const flows = drawFlows(ctx);
    drawMemory(ctx);
    drawHighlight(ctx);
    root.dataset.lanes = String(meta.lanes.length);
    root.dataset.bars = String(bars);
    root.dataset.flows = String(flows);
    root.dataset.drawMs = (performance.now() - t0).toFixed(2);
    root.dataset.draws = String(++draws);
  }

  function drawAxis(ctx) {
    const span = view[1] - view[0], step = niceStep(span, width / 110);
    ctx.fillStyle = "#666"; ctx.strokeStyle = "#e4e4e4"; ctx.font = "10px system-ui, sans-serif"; ctx.lineWidth = 1;
    const grid = new Path2D();
    for (let t = Math.ceil(view[0] / step) * step; t <= view[1]; t += step) {
      const x = Math.round(xOf(t)) + 0.5;
      grid.moveTo(x, AXIS_H - 4); grid.lineTo(x, height);
      ctx.fillText(tickLabel(t, step), x + 2, AXIS_H - 8);
    }
    ctx.stroke(grid);
  }

  function drawFlows(ctx) {
    const { cols, end, meta } = data;
    const src = cols.flow_src, dst = cols.flow_dst, kind = cols.flow_kind;
    const paths = meta.flow_kinds.map(() => new Path2D());
    let drawn = 0;
    for (let f = 0; f < src.length; f++) {
      const a = src[f], b = dst[f];
      const xa = xOf(end[a]), xb = xOf(cols.start[b]);
      if ((xa < 0 && xb < 0) || (xa > width && xb > width)) continue;
      const ya = layout.laneY[cols.row[a]] + ROW_H / 2, yb = layout.laneY[cols.row[b]] + ROW_H / 2;
      const p = paths[kind[f]];
      p.moveTo(xa, ya); p.lineTo(xb, yb);
      const ang = Math.atan2(yb - ya, xb - xa);
      p.moveTo(xb, yb); p.lineTo(xb - 6 * Math.cos(ang - 0.4), yb - 6 * Math.sin(ang - 0.4));
      p.moveTo(xb, yb); p.lineTo(xb - 6 * Math.cos(ang + 0.4), yb - 6 * Math.sin(ang + 0.4));
      drawn++;
    }
    ctx.lineWidth = 1; ctx.globalAlpha = Math.max(0.15, Math.min(0.8, width / 4 / Math.max(1, drawn)));
    paths.forEach((p, k) => { ctx.strokeStyle = FLOW_COLORS[meta.flow_kinds[k]] || FLOW_COLORS["cross stream"]; ctx.stroke(p); });
    ctx.globalAlpha = 1;
    return drawn;
  }

  function drawMemory(ctx) {
    const { cols, meta, memTop } = data;
    const t = cols.mem_t, h = MEM_H - 10;
    meta.recordings.forEach((rec, r) => {
      const y = layout.memY[r];
      if (y < 0) return;
      const [off, n] = rec.memory;
      ctx.fillStyle = "#fafafa"; ctx.fillRect(0, y, width, MEM_H);
      ctx.fillStyle = "#777"; ctx.font = "10px system-ui, sans-serif";
      ctx.fillText(`max ${fmtBytes(memTop)}`, 4, y + 10);
      // samples from the one before the view to the one after it (times are sorted)
      const first = Math.max(off, lowerBoundFlat(t, off, off + n, view[0]) - 1);
      const last = Math.min(off + n, lowerBoundFlat(t, off, off + n, view[1]) + 1);
      for (const k of ["cache", "active", "peak"]) {
        const v = cols[`mem_${k}`], p = new Path2D();
        // a step line; samples sharing a pixel column become one vertical stroke through
        // their extremes, so a frame costs O(columns) path vertices, whatever the count
        let col = NaN, lo = 0, hi = 0, lastY = 0;
        for (let i = first; i < last; i++) {
          const x = xOf(t[i]), c = Math.round(x);
          const ny = y + MEM_H - 2 - (v[i] / memTop) * h;
          if (c === col) { lo = Math.min(lo, ny); hi = Math.max(hi, ny); lastY = ny; continue; }
          if (!Number.isNaN(col)) { p.lineTo(col, lo); p.lineTo(col, hi); p.lineTo(col, lastY); }
          if (i === first) p.moveTo(c, ny); else p.lineTo(c, lastY); // hold the level, then step
          col = c; lo = hi = lastY = ny;
        }
        if (!Number.isNaN(col)) { p.lineTo(col, lo); p.lineTo(col, hi); p.lineTo(col, lastY); }
        ctx.strokeStyle = MEM_COLORS[k]; ctx.lineWidth = k === "active" ? 1.5 : 1.2;
        ctx.setLineDash(k === "peak" ? [4, 3] : []); ctx.stroke(p);
      }
      ctx.setLineDash([]);
    });
  }

  function drawHighlight(ctx) {
    const bars = model.get("_highlight") || [];
    if (!bars.length) return;
    const { cols, end } = data;
    const p = new Path2D(), chain = new Path2D();
    let prev = -1;
    for (const i of bars) {
      if (i < 0 || i >= data.n) continue;
      const y = layout.laneY[cols.row[i]], x0 = xOf(cols.start[i]), x1 = xOf(end[i]);
      p.rect(x0 - 1, y + 2, Math.max(3, x1 - x0 + 2), ROW_H - 4);
      if (prev >= 0) {
        chain.moveTo(xOf(end[prev]), layout.laneY[cols.row[prev]] + ROW_H / 2);
        chain.lineTo(x0, y + ROW_H / 2);
      }
      prev = i;
    }
    ctx.strokeStyle = HIGHLIGHT; ctx.lineWidth = 2; ctx.stroke(p); ctx.stroke(chain); ctx.lineWidth = 1;
  }

  // -- interaction --------------------------------------------------------------
  function barAt(x, y) {
    const { meta, byRow, cols, end, maxDur } = data;
    const row = meta.lanes.findIndex((_, r) => y >= layout.laneY[r] && y < layout.laneY[r] + ROW_H);
    if (row < 0) return -1;
    const px = (view[1] - view[0]) / width, t = tOf(x), tol = 3 * px, idx = byRow[row];
    let best = -1, bestDist = Infinity;
    let k = lowerBound(idx, cols.start, t + tol) - 1;
    for (let steps = 0; k >= 0 && steps < 256; k--, steps++) {
      const i = idx[k];
      if (cols.start[i] < t - tol - maxDur[row]) break;
      const e = cols.flags[i] & IN_FLIGHT ? Math.max(end[i], cols.start[i] + OPEN_MIN * px) : end[i];
      const d = t < cols.start[i] ? cols.start[i] - t : t > e ? t - e : 0;
      if (d <= tol && d < bestDist) { best = i; bestDist = d; if (d === 0) break; }
    }
    return best;
  }

  function memoryAt(x, y) {
    const r = layout.memY.findIndex((my) => my >= 0 && y >= my && y < my + MEM_H);
    if (r < 0) return null;
    const [off, n] = data.meta.recordings[r].memory, t = tOf(x), ts = data.cols.mem_t;
    let lo = off, hi = off + n;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (ts[mid] <= t) lo = mid + 1; else hi = mid; }
    const i = Math.max(off, lo - 1), c = data.cols;
    return `memory at ${fmtTime(ts[i])}\nactive ${fmtBytes(c.mem_active[i])}\ncache  ${fmtBytes(c.mem_cache[i])}\npeak   ${fmtBytes(c.mem_peak[i])}`;
  }

  function describe(i) {
    const { meta, cols, end } = data;
    const lane = meta.lanes[cols.row[i]], rec = meta.recordings[lane.recording];
    const inFlight = cols.flags[i] & IN_FLIGHT, measured = cols.flags[i] & START_MEASURED;
    const lines = [`${meta.strings[cols.name[i]]}  (op ${cols.id[i]})`];
    const info = meta.strings[cols.info[i]];
    if (info) lines.push(info);
    lines.push(`${fmtBytes(cols.nbytes[i])} out · ${lane.label}`);
    lines.push(inFlight ? `in flight since ${fmtTime(cols.start[i])}`
      : `${fmtTime(end[i] - cols.start[i])} (${measured ? "measured start" : "derived start"}, measured end)`);
    if (meta.recordings.length > 1) lines.push(rec.label);
    return lines.join("\n");
  }

  function setHover(i) {
    if (i === hoverBar) return;
    hoverBar = i;
    const ctx = overlay.getContext("2d"), dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    let id = -1;
    if (i >= 0) {
      const { cols, end } = data, y = layout.laneY[cols.row[i]];
      const x0 = xOf(cols.start[i]), x1 = xOf(end[i]);
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
      ctx.strokeRect(x0 - 1, y + 2, Math.max(3, x1 - x0 + 2), ROW_H - 4);
      if (data.meta.lanes[cols.row[i]].recording === 0) id = cols.id[i];
    }
    if (model.get("hovered") !== id) { model.set("hovered", id); model.save_changes(); }
  }

  function showTip(text, px, py) {
    if (!text) { tooltip.style.display = "none"; return; }
    tooltip.textContent = text;
    tooltip.style.display = "block";
    const left = Math.min(px + 12, LABEL_W + width - tooltip.offsetWidth - 4);
    tooltip.style.left = `${Math.max(0, left)}px`;
    const below = py + 14, above = py - 8 - tooltip.offsetHeight; // stay inside the stage
    tooltip.style.top = `${below + tooltip.offsetHeight > height && above >= 0 ? above : below}px`;
  }

  let drag = null;
  function onDrag(ev) {
    if (!drag) return;
    const x = ev.clientX - canvas.getBoundingClientRect().left;
    const dt = ((drag.x - x) / width) * (drag.view[1] - drag.view[0]);
    view = [drag.view[0] + dt, drag.view[1] + dt]; userView = true;
    schedule();
  }
  function onMove(ev) {
    if (drag || !data) return;
    const rect = canvas.getBoundingClientRect(), x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    const i = barAt(x, y);
    setHover(i);
    showTip(i >= 0 ? describe(i) : memoryAt(x, y), x + LABEL_W, y);
  }
  function onLeave() { if (!drag) { setHover(-1); showTip(null); } }
  function onWheel(ev) {
    if (!data) return;
    ev.preventDefault();
    const rect = canvas.getBoundingClientRect(), t = tOf(ev.clientX - rect.left);
    const f = Math.exp(Math.max(-1, Math.min(1, ev.deltaY * 0.0015)));
    const fullSpan = data.full[1] - data.full[0];
    const span = Math.min(fullSpan * 4, Math.max(1e-9, (view[1] - view[0]) * f));
    const a = (t - view[0]) / (view[1] - view[0]);
    view = [t - a * span, t - a * span + span]; userView = true;
    setHover(-1); showTip(null);
    schedule();
  }
  function onDown(ev) {
    if (ev.button !== 0 || !data) return;
    const rect = canvas.getBoundingClientRect();
    drag = { x: ev.clientX - rect.left, view: view.slice() };
    canvas.style.cursor = "grabbing";
    showTip(null);
  }
  function onUp() { drag = null; canvas.style.cursor = "grab"; }
  function onDouble() { if (data) { view = data.full.slice(); userView = false; schedule(); } }

  function schedule() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (reload) { reload = false; load(); }
      if (data) draw();
    });
  }
  const onData = () => { reload = true; schedule(); };
  const onHighlight = () => schedule();

  canvas.addEventListener("mousemove", onMove);
  canvas.addEventListener("mouseleave", onLeave);
  canvas.addEventListener("wheel", onWheel, { passive: false });
  canvas.addEventListener("mousedown", onDown);
  canvas.addEventListener("dblclick", onDouble);
  window.addEventListener("mousemove", onDrag);
  window.addEventListener("mouseup", onUp);
  model.on("change:_payload", onData);
  model.on("change:_meta", onData);
  model.on("change:_highlight", onHighlight);
  const observer = typeof ResizeObserver === "undefined" ? null
    : new ResizeObserver(() => { if (layout && resize()) schedule(); });
  if (observer) observer.observe(root);
  schedule();

  return () => {
    if (frame) cancelAnimationFrame(frame);
    if (observer) observer.disconnect();
    window.removeEventListener("mousemove", onDrag);
    window.removeEventListener("mouseup", onUp);
    model.off("change:_payload", onData);
    model.off("change:_meta", onData);
    model.off("change:_highlight", onHighlight);
  };
}

export default { render };
