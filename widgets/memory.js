// MemoryView: MLX's allocator counters over time (active, cache, peak: three
// panels, never one merged line), the registry table, and one residency strip per
// array (pages coloured by where they live, buckets scaled to the strip's width).
// Reads only what Python sends; every redraw starts from the model.
//
// One module with shared.js before it (unimem/views/assets.py esm(): no bundler).
//
// Model state (written by unimem/views/memory.py):
//   counters       bytes: float64, 4 rows of n_samples: t, active, cache, peak
//   n_samples      int
//   rows           [{name, shape, dtype, bytes, buffer, stream, state, residency (text),
//                    alive, producer (op id, -1 none), pages, offset, buckets}]
//   strips         bytes: uint8 (bucket, class) shares out of 255; a row's buckets are
//                  [offset, offset + buckets)
//   classes        page class names, in the strips' column order ("host", ...)
//   explain        {counter: what it counts}
//   backend        "cpu", "metal" or "cuda"
//   highlight_rows row indices to highlight (written by Python from highlight_op)

const CSS = `
.unimem-memory { line-height: 1.4; }
.unimem-memory canvas { display: block; }
.unimem-memory-legend { display: flex; flex-direction: column; gap: 2px; margin: 4px 0 8px; }
.unimem-memory-legend b { display: inline-block; width: 4em; margin-right: 4px; }
.unimem-registry { border-collapse: collapse; }
.unimem-registry th, .unimem-registry td { padding: 1px 8px; text-align: left; white-space: nowrap; }
.unimem-registry tr.unimem-hl { background: ${PALETTE.highlight}40; }
.unimem-registry tr.unimem-freed { color: #999; }
.unimem-residency-strip { border: 1px solid #ccc; }
`;

// The counters' columns, over one aligned copy of their bytes.
function counterData(model) {
  const n = model.get("n_samples");
  const f = column(bytesOf(model.get("counters")), Float64Array, 0, 4 * n);
  return { n, t: f.subarray(0, n), active: f.subarray(n, 2 * n),
           cache: f.subarray(2 * n, 3 * n), peak: f.subarray(3 * n, 4 * n) };
}

// Each counter as a step line: it holds its value until the next sample (MLX's counters
// change in steps, when buffers are handed out or freed), each sample marked by a dot, so
// that two or three samples read as points, not as a ramp. A time axis runs under the panels.
function drawCounters(canvas, model) {
  const d = counterData(model);
  const w = canvas.width, panel = 48, gap = 6, axis = 16;
  canvas.height = COUNTERS.length * (panel + gap) + axis;
  canvas.dataset.samples = String(d.n);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, canvas.height);
  const t0 = d.n ? d.t[0] : 0, t1 = d.n ? d.t[d.n - 1] : 1;
  const span = t1 > t0 ? t1 - t0 : 1;
  const xOf = (t) => ((t - t0) / span) * (w - 1);
  COUNTERS.forEach((key, k) => {
    const y0 = k * (panel + gap), ys = d[key];
    let top = 1;
    for (let i = 0; i < d.n; i++) top = Math.max(top, ys[i]);
    const yOf = (v) => y0 + panel - 2 - (v / top) * (panel - 14);
    ctx.fillStyle = "#f7f7f7";
    ctx.fillRect(0, y0, w, panel);
    ctx.strokeStyle = ctx.fillStyle = PALETTE[key];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let i = 0; i < d.n; i++) {
      const x = xOf(d.t[i]), y = yOf(ys[i]);
      if (i === 0) ctx.moveTo(x, y);
      else { ctx.lineTo(x, yOf(ys[i - 1])); ctx.lineTo(x, y); }
    }
    ctx.stroke();
    for (let i = 0; i < d.n; i++) ctx.fillRect(xOf(d.t[i]) - 1.5, yOf(ys[i]) - 1.5, 3, 3);
    ctx.fillStyle = "#222";
    ctx.font = "11px system-ui, sans-serif";
    const last = d.n ? ys[d.n - 1] : 0;
    ctx.fillText(`${key}: ${fmtBytes(last)} (max ${fmtBytes(d.n ? top : 0)})`, 4, y0 + 11);
  });
  const ya = COUNTERS.length * (panel + gap);  // the time axis: start, middle, end
  ctx.fillStyle = "#555";
  ctx.font = "10px system-ui, sans-serif";
  [0, 0.5, 1].forEach((f, j) => {
    ctx.fillRect(f * (w - 1), ya, 1, 4);
    ctx.textAlign = ["left", "center", "right"][j];
    ctx.fillText(fmtTime(d.n ? f * (t1 - t0) : 0), f * (w - 1), ya + 14);
  });
  canvas.dataset.axis = fmtTime(d.n ? t1 - t0 : 0);
  ctx.textAlign = "right";
  ctx.fillStyle = "#222";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(`${d.n} samples over ${fmtTime(d.n ? t1 - t0 : 0)}`, w - 4, 11);
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
      ctx.fillStyle = PALETTE[classes[j]];
      ctx.fillRect(x, y, 1, hh + 0.5);
      y += hh;
    }
  }
}

function legend(model) {
  const box = element("div", "unimem-memory-legend");
  const explain = model.get("explain");
  for (const key of COUNTERS) {
    const line = element("div"), b = element("b");
    line.innerHTML = swatch(PALETTE[key]);
    b.textContent = key;
    line.append(b, document.createTextNode(explain[key] || ""));
    box.append(line);
  }
  const pages = element("div");
  pages.innerHTML = "pages: " + model.get("classes").map((cls) => `${swatch(PALETTE[cls])}${esc(cls)}  `).join("");
  box.append(pages);
  return box;
}

function table(model) {
  const rows = model.get("rows");
  const hl = new Set(model.get("highlight_rows"));
  const strips = bytesOf(model.get("strips"));
  const classes = model.get("classes");
  const t = element("table", "unimem-registry");
  const cols = ["name", "shape", "dtype", "bytes", "buffer", "stream", "state", "residency"];
  const head = t.insertRow();
  for (const c of [...cols, "pages"]) {
    const th = element("th");
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
    const canvas = element("canvas", "unimem-residency-strip");
    canvas.width = 240;
    canvas.height = 12;
    canvas.dataset.pages = String(row.pages);
    canvas.title = `${row.name}: ${row.residency}`;
    tr.insertCell().append(canvas);
    drawStrip(canvas, strips, row, classes);
  });
  return t;
}

// Copies and unified-memory migrations the driver measured (CUPTI), one row per route.
function transfersTable(model) {
  const rows = model.get("transfers");
  const box = element("div", "unimem-memory-transfers");
  if (!rows.length) return box;
  const caption = element("div");
  caption.textContent = "moved between memories, measured by the GPU's driver (CUPTI):";
  const t = element("table", "unimem-registry");
  const cols = ["route", "count", "bytes", "time"];
  const head = t.insertRow();
  for (const c of cols) {
    const th = element("th");
    th.textContent = c;
    head.append(th);
  }
  for (const row of rows) {
    const tr = t.insertRow();
    tr.dataset.activity = row.activity;
    for (const c of cols) tr.insertCell().textContent = String(row[c]);
  }
  box.append(caption, t);
  return box;
}

function render({ model, el }) {
  const root = mount(el, "unimem-memory", CSS);
  const counters = element("div", "unimem-memory-counters");
  const canvas = element("canvas");
  canvas.width = 640;
  counters.append(canvas);
  const tableBox = element("div");
  const movedBox = element("div");
  root.append(counters, legend(model), movedBox, tableBox);
  const redrawMoved = () => movedBox.replaceChildren(transfersTable(model));

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
  redrawMoved();
  model.on("change:counters", redrawCounters);
  model.on("change:transfers", redrawMoved);
  model.on("change:rows", redrawTable);
  model.on("change:strips", redrawTable);
  model.on("change:highlight_rows", highlight);
  return () => {
    model.off("change:counters", redrawCounters);
    model.off("change:transfers", redrawMoved);
    model.off("change:rows", redrawTable);
    model.off("change:strips", redrawTable);
    model.off("change:highlight_rows", highlight);
  };
}

export default { render };
