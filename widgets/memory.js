// MemoryView: MLX's allocator counters over time (active, cache, peak: three
// panels, never one merged line), the registry table, and one residency strip per
// array (pages coloured by where they live, buckets scaled to the strip's width).
// Reads only what Python sends; every redraw starts from the model.

const COLORS = {
  active: "#1f77b4",
  cache: "#9467bd",
  peak: "#d62728",
  host: "#2ca02c",
  "not on host": "#ff7f0e",
  error: "#7f7f7f",
  shared: "#17becf",
  "not probed": "#dddddd",
};
const STYLE = `
.unimem-memory { font: 12px/1.4 system-ui, sans-serif; color: #222; }
.unimem-memory canvas { display: block; }
.unimem-memory-legend { display: flex; flex-direction: column; gap: 2px; margin: 4px 0 8px; }
.unimem-memory-legend b { display: inline-block; width: 4em; margin-right: 4px; }
.unimem-memory-swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.unimem-registry { border-collapse: collapse; }
.unimem-registry th, .unimem-registry td { padding: 1px 8px; text-align: left; white-space: nowrap; }
.unimem-registry tr.unimem-hl { background: #fff3b0; }
.unimem-registry tr.unimem-freed { color: #999; }
.unimem-residency-strip { border: 1px solid #ccc; }
`;

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n.toFixed(0)} B` : `${n.toFixed(1)} ${units[i]}`;
}

// A Bytes trait arrives as a DataView (or nothing yet): copy it out, aligned.
function bytesOf(v) {
  if (!v || !v.buffer) return new Uint8Array(0);
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

function counterData(model) {
  const n = model.get("n_samples");
  const f = new Float64Array(bytesOf(model.get("counters")).buffer);
  return { n, t: f.subarray(0, n), active: f.subarray(n, 2 * n),
           cache: f.subarray(2 * n, 3 * n), peak: f.subarray(3 * n, 4 * n) };
}

function drawCounters(canvas, model) {
  const d = counterData(model);
  const keys = ["active", "cache", "peak"];
  const w = canvas.width, panel = 48, gap = 6;
  canvas.height = keys.length * (panel + gap);
  canvas.dataset.samples = String(d.n);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, canvas.height);
  const t0 = d.n ? d.t[0] : 0, t1 = d.n ? d.t[d.n - 1] : 1;
  const span = t1 > t0 ? t1 - t0 : 1;
  keys.forEach((key, k) => {
    const y0 = k * (panel + gap), ys = d[key];
    let top = 1;
    for (let i = 0; i < d.n; i++) top = Math.max(top, ys[i]);
    ctx.fillStyle = "#f7f7f7";
    ctx.fillRect(0, y0, w, panel);
    ctx.strokeStyle = COLORS[key];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let i = 0; i < d.n; i++) {
      const x = ((d.t[i] - t0) / span) * (w - 1);
      const y = y0 + panel - 2 - (ys[i] / top) * (panel - 14);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
    ctx.fillStyle = "#222";
    ctx.font = "11px system-ui, sans-serif";
    const last = d.n ? ys[d.n - 1] : 0;
    ctx.fillText(`${key}: ${fmtBytes(last)} (max ${fmtBytes(d.n ? top : 0)})`, 4, y0 + 11);
  });
  const secs = d.n ? t1 - t0 : 0;
  const label = secs >= 1 ? `${secs.toFixed(2)} s` : `${(secs * 1e3).toFixed(2)} ms`;
  ctx.textAlign = "right";
  ctx.fillText(`${d.n} samples over ${label}`, w - 4, 11);
  ctx.textAlign = "left";
}

function drawStrip(canvas, strips, row, classes) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, k = row.buckets, c = classes.length;
  ctx.clearRect(0, 0, w, h);
  if (!k) return;
  // Pixel column x covers buckets [x*k/w, (x+1)*k/w): average their class shares,
  // then stack the shares vertically in the classes' colours.
  for (let x = 0; x < w; x++) {
    const b0 = Math.floor((x * k) / w), b1 = Math.max(b0 + 1, Math.floor(((x + 1) * k) / w));
    const share = new Array(c).fill(0);
    for (let b = b0; b < b1 && b < k; b++)
      for (let j = 0; j < c; j++) share[j] += strips[(row.offset + b) * c + j];
    const total = share.reduce((a, v) => a + v, 0) || 1;
    let y = 0;
    for (let j = 0; j < c; j++) {
      const hh = (share[j] / total) * h;
      if (hh <= 0) continue;
      ctx.fillStyle = COLORS[classes[j]] || "#000";
      ctx.fillRect(x, y, 1, hh + 0.5);
      y += hh;
    }
  }
}

function legend(model) {
  const box = document.createElement("div");
  box.className = "unimem-memory-legend";
  const explain = model.get("explain");
  for (const key of ["active", "cache", "peak"]) {
    const line = document.createElement("div");
    line.innerHTML = `<span class="unimem-memory-swatch" style="background:${COLORS[key]}"></span>`;
    const b = document.createElement("b");
    b.textContent = key;
    line.append(b, document.createTextNode(explain[key] || ""));
    box.append(line);
  }
  const pages = document.createElement("div");
  pages.append(document.createTextNode("pages: "));
  for (const cls of model.get("classes")) {
    const s = document.createElement("span");
    s.className = "unimem-memory-swatch";
    s.style.background = COLORS[cls];
    pages.append(s, document.createTextNode(`${cls}  `));
  }
  box.append(pages);
  return box;
}

function table(model) {
  const rows = model.get("rows");
  const hl = new Set(model.get("highlight_rows"));
  const strips = bytesOf(model.get("strips"));
  const classes = model.get("classes");
  const t = document.createElement("table");
  t.className = "unimem-registry";
  const cols = ["name", "shape", "dtype", "bytes", "buffer", "stream", "state", "residency"];
  const head = t.insertRow();
  for (const c of [...cols, "pages"]) {
    const th = document.createElement("th");
    th.textContent = c;
    head.append(th);
  }
  rows.forEach((row, i) => {
    const tr = t.insertRow();
    tr.dataset.name = row.name;
    tr.dataset.producer = String(row.producer);
    if (hl.has(i)) tr.classList.add("unimem-hl");
    if (!row.alive) tr.classList.add("unimem-freed");
    for (const c of cols) tr.insertCell().textContent = String(row[c]);
    const canvas = document.createElement("canvas");
    canvas.className = "unimem-residency-strip";
    canvas.width = 240;
    canvas.height = 12;
    canvas.dataset.pages = String(row.pages);
    canvas.title = `${row.name}: ${row.residency}`;
    tr.insertCell().append(canvas);
    drawStrip(canvas, strips, row, classes);
  });
  return t;
}

function render({ model, el }) {
  const style = document.createElement("style");
  style.textContent = STYLE;
  const root = document.createElement("div");
  root.className = "unimem-memory";
  const counters = document.createElement("div");
  counters.className = "unimem-memory-counters";
  const canvas = document.createElement("canvas");
  canvas.width = 640;
  counters.append(canvas);
  const tableBox = document.createElement("div");
  root.append(style, counters, legend(model), tableBox);
  el.append(root);

  const redrawCounters = () => drawCounters(canvas, model);
  const redrawTable = () => {
    root.dataset.backend = model.get("backend");
    tableBox.replaceChildren(table(model));
  };
  const highlight = () => {
    const hl = new Set(model.get("highlight_rows"));
    tableBox.querySelectorAll("tr[data-name]").forEach((tr, i) =>
      tr.classList.toggle("unimem-hl", hl.has(i)));
  };
  redrawCounters();
  redrawTable();
  model.on("change:counters", redrawCounters);
  model.on("change:rows", redrawTable);
  model.on("change:strips", redrawTable);
  model.on("change:highlight_rows", highlight);
  return () => {
    model.off("change:counters", redrawCounters);
    model.off("change:rows", redrawTable);
    model.off("change:strips", redrawTable);
    model.off("change:highlight_rows", highlight);
  };
}

export default { render };
