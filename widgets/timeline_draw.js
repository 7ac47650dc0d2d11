// Painting the timeline's canvases: functions of (ctx, data, lay, view) that keep no
// state. data is decode()'s, lay is layout()'s (rows, in CSS pixels), view is
// timeAxis()'s (times to x). Joined after timeline.js into one module, whose constants
// they use (see its header).

// The canvas's 2d context, scaled to CSS pixels and cleared.
function cleared(canvas, width, height) {
  const ctx = canvas.getContext("2d"), dpr = window.devicePixelRatio || 1;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

// A step of 1, 2 or 5 times a power of ten that cuts span into about `target` parts.
function niceStep(span, target) {
  const raw = span / Math.max(1, target), p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

// A tick's time in the unit of its step, with just the digits the step needs.
function tickLabel(t, step) {
  const [unit, name] = step >= 1 ? [1, "s"] : step >= 1e-3 ? [1e-3, "ms"] : step >= 1e-6 ? [1e-6, "µs"] : [1e-9, "ns"];
  const digits = Math.max(0, -Math.floor(Math.log10(step / unit) + 1e-9));
  return `${(t / unit).toFixed(digits)} ${name}`;
}

function drawAxis(ctx, lay, view) {
  const step = niceStep(view.t1 - view.t0, view.width / 110);
  ctx.fillStyle = "#666"; ctx.strokeStyle = "#e4e4e4"; ctx.font = "10px system-ui, sans-serif"; ctx.lineWidth = 1;
  const grid = new Path2D();
  for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
    const x = Math.round(view.x(t)) + 0.5;
    grid.moveTo(x, AXIS_H - 4); grid.lineTo(x, lay.height);
    ctx.fillText(tickLabel(t, step), x + 2, AXIS_H - 8);
  }
  ctx.stroke(grid);
}

// Every lane's bars in view, in its device's colour: solid for a measured start, light
// with a solid end for a derived one, an open dashed box for one in flight. Bars under
// a pixel wide add to their pixel column's coverage, drawn darker the fuller it is.
// Returns the number of bars in view.
function drawLanes(ctx, data, lay, view) {
  const { cols, end, byRow, maxDur, meta } = data, { start, flags } = cols, width = view.width;
  const cover = new Float32Array(width + 1);
  let bars = 0;
  meta.lanes.forEach((lane, row) => {
    const y = lay.laneY[row], color = deviceColor(lane.device), idx = byRow[row];
    if (y < 0) return; // a folded group's lane
    ctx.fillStyle = row % 2 ? "#f7f7f7" : "#fbfbfb";
    ctx.fillRect(0, y, width, ROW_H);
    // the first bar that can reach into view starts at most the longest bar before it
    let k = bisect(0, idx.length, (j) => start[idx[j]] < view.t0 - maxDur[row]);
    cover.fill(0);
    let cmin = width, cmax = -1;
    const solid = new Path2D(), light = new Path2D(), edge = new Path2D(), open = new Path2D();
    for (; k < idx.length; k++) {
      const i = idx[k], s = start[i];
      if (s > view.t1) break;
      const e = end[i];
      if (e < view.t0) continue;
      bars++;
      const inFlight = flags[i] & IN_FLIGHT;
      const x0 = Math.max(-2, view.x(s));
      const x1 = Math.min(width + 2, inFlight ? Math.max(view.x(e), view.x(s) + OPEN_MIN) : view.x(e));
      if (x1 - x0 < 1 && !inFlight) {
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
  return bars;
}

// An arrow per flow with an end in view, from the producer's end to the consumer's
// start, in its kind's colour; fainter the more there are. Returns how many.
function drawFlows(ctx, data, lay, view) {
  const { cols, end, meta } = data, { flow_src: src, flow_dst: dst, flow_kind: kind } = cols;
  const paths = meta.flow_kinds.map(() => new Path2D());
  const mid = (i) => lay.laneY[cols.row[i]] + ROW_H / 2;
  let drawn = 0;
  for (let f = 0; f < src.length; f++) {
    const a = src[f], b = dst[f];
    if (lay.laneY[cols.row[a]] < 0 || lay.laneY[cols.row[b]] < 0) continue; // folded away
    const xa = view.x(end[a]), xb = view.x(cols.start[b]);
    if ((xa < 0 && xb < 0) || (xa > view.width && xb > view.width)) continue;
    const ya = mid(a), yb = mid(b), p = paths[kind[f]];
    p.moveTo(xa, ya); p.lineTo(xb, yb);
    const ang = Math.atan2(yb - ya, xb - xa);
    p.moveTo(xb, yb); p.lineTo(xb - 6 * Math.cos(ang - 0.4), yb - 6 * Math.sin(ang - 0.4));
    p.moveTo(xb, yb); p.lineTo(xb - 6 * Math.cos(ang + 0.4), yb - 6 * Math.sin(ang + 0.4));
    drawn++;
  }
  ctx.lineWidth = 1; ctx.globalAlpha = Math.max(0.15, Math.min(0.8, view.width / 4 / Math.max(1, drawn)));
  paths.forEach((p, k) => { ctx.strokeStyle = flowColor(meta.flow_kinds[k]); ctx.stroke(p); });
  ctx.globalAlpha = 1;
  return drawn;
}

// Each recording's memory lane: active, cache and peak as step lines on one scale.
function drawMemory(ctx, data, lay, view) {
  const { cols, meta, memTop } = data;
  const t = cols.mem_t, h = MEM_H - 10;
  meta.recordings.forEach((rec, r) => {
    const y = lay.memY[r];
    if (y < 0) return;
    const [off, n] = rec.memory;
    ctx.fillStyle = "#fafafa"; ctx.fillRect(0, y, view.width, MEM_H);
    ctx.fillStyle = "#777"; ctx.font = "10px system-ui, sans-serif";
    ctx.fillText(`max ${fmtBytes(memTop)}`, 4, y + 10);
    // samples from the one before the view to the one after it (times are sorted)
    const first = Math.max(off, bisect(off, off + n, (i) => t[i] < view.t0) - 1);
    const last = Math.min(off + n, bisect(off, off + n, (i) => t[i] < view.t1) + 1);
    for (const k of ["cache", "active", "peak"]) { // active over cache; peak, dashed, on top
      const v = cols[`mem_${k}`], p = new Path2D();
      // a step line; samples sharing a pixel column become one vertical stroke through
      // their extremes, so a frame costs O(columns) path vertices, whatever the count
      let col = NaN, lo = 0, hi = 0, lastY = 0;
      for (let i = first; i < last; i++) {
        const c = Math.round(view.x(t[i]));
        const ny = y + MEM_H - 2 - (v[i] / memTop) * h;
        if (c === col) { lo = Math.min(lo, ny); hi = Math.max(hi, ny); lastY = ny; continue; }
        if (!Number.isNaN(col)) { p.lineTo(col, lo); p.lineTo(col, hi); p.lineTo(col, lastY); }
        if (i === first) p.moveTo(c, ny); else p.lineTo(c, lastY); // hold the level, then step
        col = c; lo = hi = lastY = ny;
      }
      if (!Number.isNaN(col)) { p.lineTo(col, lo); p.lineTo(col, hi); p.lineTo(col, lastY); }
      ctx.strokeStyle = PALETTE[k]; ctx.lineWidth = k === "active" ? 1.5 : 1.2;
      ctx.setLineDash(k === "peak" ? [4, 3] : []); ctx.stroke(p);
    }
    ctx.setLineDash([]);
  });
}

// The bars of a chain (bar indices in chain order), outlined and linked end to start.
function drawHighlight(ctx, data, lay, view, bars) {
  if (!bars.length) return;
  const { cols, end } = data;
  const p = new Path2D(), chain = new Path2D();
  let prev = -1;
  for (const i of bars) {
    if (i < 0 || i >= data.n || lay.laneY[cols.row[i]] < 0) continue;
    const y = lay.laneY[cols.row[i]], x0 = view.x(cols.start[i]), x1 = view.x(end[i]);
    p.rect(x0 - 1, y + 2, Math.max(3, x1 - x0 + 2), ROW_H - 4);
    if (prev >= 0) {
      chain.moveTo(view.x(end[prev]), lay.laneY[cols.row[prev]] + ROW_H / 2);
      chain.lineTo(x0, y + ROW_H / 2);
    }
    prev = i;
  }
  ctx.strokeStyle = PALETTE.highlight; ctx.lineWidth = 2; ctx.stroke(p); ctx.stroke(chain); ctx.lineWidth = 1;
}

// The outline of the bar under the mouse (on the overlay canvas).
function drawHover(ctx, data, lay, view, i) {
  const { cols, end } = data, y = lay.laneY[cols.row[i]];
  const x0 = view.x(cols.start[i]), x1 = view.x(end[i]);
  ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
  ctx.strokeRect(x0 - 1, y + 2, Math.max(3, x1 - x0 + 2), ROW_H - 4);
}
