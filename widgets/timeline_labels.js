// unimem timeline: the words and labels around the canvas (joined after timeline.js by
// unimem/views/assets.py: one module scope). The tooltip of a bar or memory sample, the
// recording's title line with what looking cost, the legend, and the row labels: lanes,
// rank groups of a merged job (click to fold), memory.

function describeBar(data, i) {
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

function describeSample(data, i) {
  const c = data.cols;
  return `memory at ${fmtTime(c.mem_t[i])}\nactive ${fmtBytes(c.mem_active[i])}\n` +
    `cache  ${fmtBytes(c.mem_cache[i])}\npeak   ${fmtBytes(c.mem_peak[i])}`;
}

// -- words around the canvas ------------------------------------------------------
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
  const times = (s) => `${fixed(s / t.plain_median, 2)}× the plain median`;
  if (t.wall !== null) lines.push(`instrumented run ${fmtTime(t.wall)} = ${times(t.wall)}`);
  if (t.makespan !== null) {
    lines.push(`timeline makespan ${fmtTime(t.makespan)}` + (t.makespan ? ` = ${times(t.makespan)}` : ""));
  }
  return lines;
}

// CUPTI's kernels: how much of their span the GPU was busy, and whether the host held it up.
function gpuWords(rec) {
  const g = rec.gpu;
  if (!g) return "";
  const idle = g.span > 0 ? Math.round(100 * (1 - g.busy / g.span)) : 0;
  return `GPU busy ${fmtTime(g.busy)} of a ${fmtTime(g.span)} kernel span (idle ${idle}%)` +
    (g.host_bound ? ", host-bound" : "");
}

function legend(meta) {
  const recs = meta.recordings, ink = "#555"; // the bar styles, whatever the device
  const span = (html) => `<span>${html}</span>`;
  return [
    ...[...new Set(meta.lanes.map((l) => l.device))].map((d) =>
      span(`${swatch(deviceColor(d))}${d === "?" ? "untracked" : d.toUpperCase()} stream`)),
    recs.some((r) => r.measured_starts < r.ops[1])
      ? span(`${swatch(ink, `opacity:.45;border-right:3px solid ${ink}`)}bar: derived start → measured end`) : "",
    recs.some((r) => r.measured_starts > 0) ? span(`${swatch(ink)}bar: measured start and end`) : "",
    ...meta.flow_kinds.map((k) => span(`<b style="color:${flowColor(k)}">→</b> ${esc(FLOWS[k] || k)}`)),
    recs.some((r) => r.in_flight > 0)
      ? span(`${swatch("transparent", `border:1px dashed ${ink};border-right:none`)}in flight (open end)`) : "",
    `<span style="color:#888">wheel: zoom · drag: pan · double-click: reset</span>`,
  ].join("");
}

function recordingTitle(rec, top) {
  const node = element("div", "unimem-recording-title");
  node.style.top = `${top}px`;
  const shown = rec.ops[1] < rec.ops_total ? `showing last ${rec.ops[1]} of ${rec.ops_total} ops` : `${rec.ops[1]} ops`;
  const flight = rec.in_flight ? ` · ${rec.in_flight} in flight` : "";
  const title = rec.label !== rec.title ? `${rec.label}: ${rec.title}` : rec.title;
  // parameter names are identifiers, never index-like keys: JS keeps their order
  const placement = Object.entries(rec.placement).map(([k, v]) => `${k}=${v}`).join(", ");
  const starts = startsWords(rec), lines = fidelityLines(rec);
  // What looking cost comes first, right after the title: the header clips what does not
  // fit, and these ratios say how far the picture is from a plain run.
  const cost = lines.slice(1).join(" · ");
  const gpu = gpuWords(rec);
  const facts = [shown + flight, ...(starts ? [`measured ends, ${starts}`] : []), ...(gpu ? [gpu] : []),
    lines[0]].join(" · ");
  node.innerHTML = `<b>${esc(title)}</b>${placement ? ` (${esc(placement)})` : ""}` +
    (cost ? ` · <span class="unimem-distortion">${esc(cost)}</span>` : "") + `<br>${esc(facts)}`;
  node.title = [...lines, ...(gpu ? [gpu] : [])].join("\n");
  return node;
}

// A group's header (a rank of a merged job): click to fold or unfold its lanes.
function groupLabel(group, folded, lanes, onClick) {
  const node = element("div", "unimem-group-label");
  node.style.top = `${group.top}px`;
  node.dataset.group = group.name;
  node.dataset.folded = folded ? "1" : "0";
  node.textContent = `${folded ? "▸" : "▾"} ${group.name} (${lanes} lane${lanes === 1 ? "" : "s"})`;
  node.title = folded ? "show this rank's lanes" : "fold this rank's lanes";
  node.addEventListener("click", onClick);
  return node;
}

function laneLabel(lane, top) {
  const node = element("div", "unimem-lane-label");
  node.style.top = `${top}px`;
  node.dataset.device = lane.device;
  const dev = lane.device === "?" ? "?" : lane.device.toUpperCase();
  node.innerHTML = `<span class="unimem-device" style="background:${deviceColor(lane.device)}">${dev}</span>${esc(lane.label)}`;
  node.title = lane.label;
  return node;
}

function memoryLabel(top) {
  const node = element("div", "unimem-memory-label");
  node.style.top = `${top}px`;
  node.innerHTML = `memory (MLX, global)<br>` + COUNTERS.map((k) =>
    `<span style="color:${PALETTE[k]}">${k === "peak" ? "┄" : "—"} ${k}</span>`).join(" ");
  return node;
}
