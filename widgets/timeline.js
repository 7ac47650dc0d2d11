// unimem timeline: lanes per stream, a bar per op, arrows for waits between streams,
// a memory lane per recording. Python (unimem/views/timeline_payload.py) sends
// columns of numbers in one bytes buffer plus a JSON meta; this module only draws
// them on a canvas. Bars narrower than a pixel are summed per pixel column per lane
// (level of detail), so the cost of a frame is bounded by the canvas width, not the
// op count.
//
// One module with shared.js before it and timeline_draw.js (the painting) after it:
// unimem/views/assets.py esm() joins them, as there is no bundler.
//
// Model state (written by unimem/views/timeline.py). Data, not display text: the
// words and colours are chosen here.
//   _meta      JSON:
//     recordings [{label, title, placement: {parameter: device}, method,
//                  gpu: null or {kernels, busy, span, host_bound} (CUPTI's kernels),
//                  timing: null (no plain runs to compare with) or {plain_median,
//                  wall, makespan} in seconds (wall, makespan may be null),
//                  ops_total, ops: [first bar, count], measured_starts (ops whose
//                  start was measured; the others' are derived), in_flight,
//                  flows: [first flow, count], memory: [first sample, count]}]
//     lanes      [{recording, lane, name, label, device}], in row order
//     flow_kinds the names of the flow kinds in the payload ("cross stream", ...)
//     strings    the texts that the name and info columns index
//     arrays     {column: [byte offset, length, "f8"|"i4"|"u1"]}
//     n_ops, n_flows, n_memory, now (the latest time seen: open bars end there)
//   _payload   bytes: columns start, end (NaN: in flight), nbytes, row (lane), name and
//              info (string table), id (op id), flags (1 start measured, 2 in flight),
//              flow_src, flow_dst (bar indices), flow_kind (index into flow_kinds),
//              mem_t/active/cache/peak.
//   _highlight bar indices of a chain to draw highlighted (e.g. a critical path).
//   hovered    written here: op id under the mouse in recording 0, -1 for none.

const ROW_H = 22, MEM_H = 56, HEAD_H = 32, GAP = 8, AXIS_H = 22, LABEL_W = 190, GROUP_H = 18;
const TYPES = { f8: Float64Array, i4: Int32Array, u1: Uint8Array };
const START_MEASURED = 1, IN_FLIGHT = 2; // bits of the flags column
const OPEN_MIN = 14; // px: an op still running is visible even when it just started

const CSS = `
.unimem-timeline { line-height: 1.3; position: relative; }
.unimem-timeline-head { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 2px 0 4px; color: #444; }
.unimem-timeline-stage { position: relative; }
.unimem-timeline-canvas { position: absolute; top: 0; left: ${LABEL_W}px; cursor: grab; }
.unimem-timeline-overlay { position: absolute; top: 0; left: ${LABEL_W}px; pointer-events: none; }
.unimem-lane-label, .unimem-memory-label { position: absolute; left: 0; height: ${ROW_H}px; line-height: ${ROW_H}px;
  width: ${LABEL_W - 6}px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; font-size: 11px; }
.unimem-memory-label { height: ${MEM_H}px; line-height: 14px; color: #555; }
.unimem-group-label { position: absolute; left: 0; height: ${GROUP_H}px; line-height: ${GROUP_H}px; font-size: 11px;
  font-weight: 600; color: #333; cursor: pointer; user-select: none; z-index: 1; }
.unimem-device { display: inline-block; padding: 0 4px; margin-right: 4px; border-radius: 3px; color: #fff;
  font-weight: 600; font-size: 10px; line-height: 15px; }
.unimem-recording-title { position: absolute; left: 0; right: 0; height: ${HEAD_H}px; overflow: hidden;
  white-space: nowrap; text-overflow: ellipsis; font-size: 11px; color: #555; pointer-events: none;
  background: #fff; z-index: 1; }
.unimem-recording-title b { color: #222; font-size: 12px; }
.unimem-tooltip { position: absolute; display: none; pointer-events: none; background: #fffffa; border: 1px solid #aaa;
  border-radius: 3px; padding: 4px 6px; font-size: 11px; white-space: pre; box-shadow: 0 1px 4px rgba(0,0,0,.2); z-index: 2; }
`;

function deviceColor(device) {
  return PALETTE[device === "?" ? "untracked" : device] || PALETTE.untracked;
}

// -- the payload --------------------------------------------------------------------
// The payload as typed columns, plus what every frame needs: in-flight bars closed at
// meta.now, per lane its bars sorted by start and its longest bar (which bounds a
// search by start), the top of the memory lanes, and the time span of everything.
function decode(meta, payload) {
  const bytes = bytesOf(payload), cols = {};
  for (const [name, [off, n, dt]] of Object.entries(meta.arrays)) cols[name] = column(bytes, TYPES[dt], off, n);
  const n = meta.n_ops, lanes = meta.lanes, start = cols.start;
  const end = new Float64Array(n);
  let t0 = Infinity, t1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const e = cols.end[i];
    end[i] = Number.isNaN(e) ? Math.max(meta.now, start[i]) : e;
    if (start[i] < t0) t0 = start[i];
    if (end[i] > t1) t1 = end[i];
  }
  const memT = cols.mem_t;
  let memTop = 1;
  for (let i = 0; i < memT.length; i++) {
    t0 = Math.min(t0, memT[i]); t1 = Math.max(t1, memT[i]);
    memTop = Math.max(memTop, cols.mem_active[i], cols.mem_cache[i], cols.mem_peak[i]);
  }
  if (!Number.isFinite(t0)) { t0 = 0; t1 = 1e-3; }
  if (t1 <= t0) t1 = t0 + 1e-6;
  const counts = new Int32Array(lanes.length);
  for (let i = 0; i < n; i++) counts[cols.row[i]]++;
  const byRow = lanes.map((_, r) => new Int32Array(counts[r]));
  const fill = new Int32Array(lanes.length);
  for (let i = 0; i < n; i++) { const r = cols.row[i]; byRow[r][fill[r]++] = i; }
  const maxDur = new Float64Array(lanes.length);
  byRow.forEach((idx, r) => {
    let sorted = true; // a lane's bars mostly arrive in start order: skip the sort then
    for (let k = 1; k < idx.length; k++) if (start[idx[k]] < start[idx[k - 1]]) { sorted = false; break; }
    if (!sorted) idx.sort((a, b) => start[a] - start[b]);
    for (let k = 0; k < idx.length; k++) maxDur[r] = Math.max(maxDur[r], end[idx[k]] - start[idx[k]]);
  });
  const pad = (t1 - t0) * 0.02;
  return { meta, cols, end, byRow, maxDur, n, memTop, full: [t0 - pad, t1 + pad] };
}

// -- geometry ------------------------------------------------------------------------
// Rows, in CSS pixels from the top: per recording its title, its lanes, then its memory
// lane (memY is -1 for a recording without samples).
// Lanes of one group (a rank of a merged distributed job: lane.group) sit under a header
// row that folds them: `folded` holds "recording/group" keys; a folded lane's y is -1.
function layout(meta, folded = new Set()) {
  const laneY = new Float64Array(meta.lanes.length), memY = [], headY = [], groups = [];
  let y = AXIS_H;
  meta.recordings.forEach((rec, r) => {
    headY.push(y); y += HEAD_H;
    let group = "";
    meta.lanes.forEach((lane, row) => {
      if (lane.recording !== r) return;
      const g = lane.group || "";
      if (g && g !== group) { groups.push({ key: `${r}/${g}`, name: g, top: y }); y += GROUP_H; }
      group = g;
      if (g && folded.has(`${r}/${g}`)) { laneY[row] = -1; return; }
      laneY[row] = y; y += ROW_H;
    });
    memY.push(rec.memory[1] > 0 ? y : -1);
    if (rec.memory[1] > 0) y += MEM_H;
    y += GAP;
  });
  return { laneY, memY, headY, groups, height: y };
}

// The time axis: times [t0, t1] across `width` canvas pixels, both ways.
function timeAxis([t0, t1], width) {
  return { t0, t1, width, x: (t) => ((t - t0) / (t1 - t0)) * width, t: (x) => t0 + (x / width) * (t1 - t0) };
}

// -- what is under the mouse -----------------------------------------------------
// The bar at canvas point (x, y): the nearest on that row within 3 pixels, or -1.
function barAt(data, lay, view, x, y) {
  const { meta, byRow, cols, end, maxDur } = data, start = cols.start;
  const row = meta.lanes.findIndex((_, r) => lay.laneY[r] >= 0 && y >= lay.laneY[r] && y < lay.laneY[r] + ROW_H);
  if (row < 0) return -1;
  const px = (view.t1 - view.t0) / view.width, t = view.t(x), tol = 3 * px, idx = byRow[row];
  let best = -1, bestDist = Infinity;
  // back from the last bar starting by t + tol; at most 256, so that a hover over a
  // pixel holding thousands of tiny bars stays cheap
  let k = bisect(0, idx.length, (j) => start[idx[j]] < t + tol) - 1;
  for (let steps = 0; k >= 0 && steps < 256; k--, steps++) {
    const i = idx[k];
    if (start[i] < t - tol - maxDur[row]) break;
    const e = cols.flags[i] & IN_FLIGHT ? Math.max(end[i], start[i] + OPEN_MIN * px) : end[i];
    const d = t < start[i] ? start[i] - t : t > e ? t - e : 0;
    if (d <= tol && d < bestDist) { best = i; bestDist = d; if (d === 0) break; }
  }
  return best;
}

// The memory sample in force at canvas point (x, y) (the last at or before its time), or -1.
function sampleAt(data, lay, view, x, y) {
  const r = lay.memY.findIndex((my) => my >= 0 && y >= my && y < my + MEM_H);
  if (r < 0) return -1;
  const [off, n] = data.meta.recordings[r].memory, t = view.t(x), ts = data.cols.mem_t;
  return Math.max(off, bisect(off, off + n, (i) => ts[i] <= t) - 1);
}

// -- the controller: owns the state, listens to the model and the mouse -----------
function render({ model, el }) {
  const root = mount(el, "unimem-timeline", CSS);
  const head = element("div", "unimem-timeline-head"), stage = element("div", "unimem-timeline-stage");
  const canvas = element("canvas", "unimem-timeline-canvas");
  const overlay = element("canvas", "unimem-timeline-overlay"); // the hover outline
  const labels = element("div"), tooltip = element("div", "unimem-tooltip");
  stage.append(labels, canvas, overlay, tooltip);
  root.append(head, stage);

  // data: decode() of the model; lay: layout() of its meta; span: the times in view
  // (kept across data updates once the user zoomed or panned)
  let data = null, lay = null, span = null, userView = false;
  const folded = new Set(); // groups (ranks) whose lanes are folded, kept across updates
  let width = 0, height = 0, frame = 0, reload = true, hoverBar = -1, draws = 0, drag = null;
  const view = () => timeAxis(span, width);

  function load() {
    data = decode(model.get("_meta"), model.get("_payload"));
    if (!userView || !span) span = data.full.slice();
    head.innerHTML = legend(data.meta);
    relayout();
    hoverBar = -2; // bars were renumbered: clear the old hover, its outline and tooltip
    setHover(-1);
    showTip(null);
  }

  // rows and their labels, after new data or a group folded or unfolded
  function relayout() {
    lay = layout(data.meta, folded);
    const count = (g) => data.meta.lanes.filter((l) => `${l.recording}/${l.group || ""}` === g.key).length;
    labels.replaceChildren(
      ...data.meta.recordings.map((rec, r) => recordingTitle(rec, lay.headY[r])),
      ...lay.groups.map((g) => groupLabel(g, folded.has(g.key), count(g), () => {
        if (folded.has(g.key)) folded.delete(g.key); else folded.add(g.key);
        relayout(); setHover(-1); showTip(null); schedule();
      })),
      ...data.meta.lanes.map((lane, row) => lay.laneY[row] >= 0 ? laneLabel(lane, lay.laneY[row]) : null)
        .filter((x) => x),
      ...lay.memY.filter((y) => y >= 0).map(memoryLabel));
    resize();
  }

  function resize() {
    const w = Math.max(200, (root.clientWidth || el.clientWidth || 900) - LABEL_W - 4);
    const h = lay ? lay.height : 100;
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

  function draw() {
    const t0 = performance.now(), v = view(), ctx = cleared(canvas, width, height);
    drawAxis(ctx, lay, v);
    const bars = drawLanes(ctx, data, lay, v);
    const flows = drawFlows(ctx, data, lay, v);
    drawMemory(ctx, data, lay, v);
    drawHighlight(ctx, data, lay, v, model.get("_highlight") || []);
    Object.assign(root.dataset, { lanes: data.meta.lanes.length, bars, flows, groups: lay.groups.length,
                                  folded: folded.size,
                                  drawMs: (performance.now() - t0).toFixed(2), draws: ++draws });
  }

  function setHover(i) {
    if (i === hoverBar) return;
    hoverBar = i;
    const ctx = cleared(overlay, width, height);
    let id = -1;
    if (i >= 0) {
      drawHover(ctx, data, lay, view(), i);
      if (data.meta.lanes[data.cols.row[i]].recording === 0) id = data.cols.id[i];
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

  const canvasX = (ev) => ev.clientX - canvas.getBoundingClientRect().left;
  function onDrag(ev) {
    if (!drag) return;
    const dt = ((drag.x - canvasX(ev)) / width) * (drag.span[1] - drag.span[0]);
    span = [drag.span[0] + dt, drag.span[1] + dt]; userView = true;
    schedule();
  }
  function onMove(ev) {
    if (drag || !data) return;
    const rect = canvas.getBoundingClientRect(), x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    const v = view(), i = barAt(data, lay, v, x, y);
    setHover(i);
    const sample = i >= 0 ? -1 : sampleAt(data, lay, v, x, y);
    showTip(i >= 0 ? describeBar(data, i) : sample >= 0 ? describeSample(data, sample) : null, x + LABEL_W, y);
  }
  function onLeave() { if (!drag) { setHover(-1); showTip(null); } }
  function onWheel(ev) {
    if (!data) return;
    ev.preventDefault();
    const t = view().t(canvasX(ev));
    const f = Math.exp(Math.max(-1, Math.min(1, ev.deltaY * 0.0015)));
    const full = data.full[1] - data.full[0];
    const s = Math.min(full * 4, Math.max(1e-9, (span[1] - span[0]) * f));
    const a = (t - span[0]) / (span[1] - span[0]); // the time under the mouse stays there
    span = [t - a * s, t - a * s + s]; userView = true;
    setHover(-1); showTip(null);
    schedule();
  }
  function onDown(ev) {
    if (ev.button !== 0 || !data) return;
    drag = { x: canvasX(ev), span: span.slice() };
    canvas.style.cursor = "grabbing";
    showTip(null);
  }
  function onUp() { drag = null; canvas.style.cursor = "grab"; }
  function onDouble() { if (data) { span = data.full.slice(); userView = false; schedule(); } }

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
    : new ResizeObserver(() => { if (lay && resize()) schedule(); });
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
