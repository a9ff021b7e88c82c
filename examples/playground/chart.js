// A small hourly chart in inline SVG: bars for calls per hour, a step line for the learned upper
// threshold, dots for alerts, shaded weekends, and a hover read-out. No library.

const SVG = "http://www.w3.org/2000/svg";
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const W = 1000;
const H = 168;
const M = { left: 38, right: 8, top: 10, bottom: 22 };
const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceStep(max, target = 4) {
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= raw) return Math.max(1, m * pow);
  return Math.max(1, 10 * pow);
}

const r1 = (x) => Math.round(x * 10) / 10;

/**
 * @param series [{t: hour start ms, count, upper: number|null, n}], one per hour, contiguous
 * @param marks  [{t, count, upper}] alerts at hour starts
 * @param offsetMs the detection's UTC offset (weekends and labels are in that local time)
 * @param tooltip a positioned element used for the hover read-out
 */
export function renderUserChart({ series, marks, offsetMs = 0, tooltip }) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "hourly", role: "img" });
  if (!series.length) return svg;
  const t0 = series[0].t;
  const n = series.length;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const bw = pw / n;
  const maxY = Math.max(1, ...series.map((s) => Math.max(s.count, s.upper ?? 0)), ...marks.map((m) => m.count));
  const step = niceStep(maxY);
  const top = Math.ceil((maxY * 1.05) / step) * step;
  const x = (t) => M.left + ((t - t0) / HOUR) * bw;
  const y = (v) => M.top + ph - (v / top) * ph;

  svg.setAttribute("aria-label", `hourly security-group calls, ${n} hours, peak ${Math.max(...series.map((s) => s.count))}`);

  // Weekends (local time), as the detection's isWeekend sees them.
  const bands = el("g", { class: "weekend" });
  const firstLocalDay = Math.floor((t0 + offsetMs) / DAY) * DAY - offsetMs;
  const end = series[n - 1].t + HOUR;
  for (let d = firstLocalDay; d < end; d += DAY) {
    const wd = new Date(d + offsetMs).getUTCDay();
    if (wd !== 0 && wd !== 6) continue;
    const a = Math.max(x(d), M.left);
    const b = Math.min(x(d + DAY), W - M.right);
    if (b > a) bands.append(el("rect", { x: r1(a), y: M.top, width: r1(b - a), height: ph }));
  }
  svg.append(bands);

  // Grid and y labels.
  const grid = el("g", { class: "grid" });
  for (let v = 0; v <= top + 1e-9; v += step) {
    grid.append(el("line", { x1: M.left, x2: W - M.right, y1: r1(y(v)), y2: r1(y(v)) }));
    grid.append(el("text", { x: M.left - 6, y: r1(y(v)) + 3.5, "text-anchor": "end" }, String(Math.round(v * 100) / 100)));
  }
  svg.append(grid);

  // X ticks: the coarsest interval that gives at least ~4 labels.
  const spanHours = n;
  const interval = [1, 3, 6, 12, 24, 48, 168].map((h) => h * HOUR).find((iv) => (spanHours * HOUR) / iv <= 9) ?? 168 * HOUR;
  const axis = el("g", { class: "axis" });
  const firstTick = Math.ceil((t0 + offsetMs) / interval) * interval - offsetMs;
  // Align weekly ticks to local Mondays.
  let tick = firstTick;
  if (interval === 168 * HOUR) {
    tick = firstLocalDay;
    while (new Date(tick + offsetMs).getUTCDay() !== 1) tick += DAY;
  }
  for (; tick <= end; tick += interval) {
    const tx = x(tick);
    // Skip ticks whose label would run past the right edge.
    if (tx < M.left - 0.5 || tx > W - M.right - (interval >= DAY ? 62 : 30)) continue;
    const local = new Date(tick + offsetMs);
    const label =
      interval >= DAY
        ? `${WEEKDAYS[local.getUTCDay()]} ${MONTHS[local.getUTCMonth()]} ${local.getUTCDate()}`
        : `${String(local.getUTCHours()).padStart(2, "0")}:00`;
    axis.append(el("line", { x1: r1(tx), x2: r1(tx), y1: M.top + ph, y2: M.top + ph + 4 }));
    axis.append(el("text", { x: r1(tx) + 3, y: H - 6 }, label));
  }
  axis.append(el("line", { x1: M.left, x2: W - M.right, y1: M.top + ph, y2: M.top + ph, class: "base" }));
  svg.append(axis);

  // Bars: one path of many small rectangles.
  const barW = Math.max(bw * 0.8, 0.9);
  let d = "";
  for (const s of series) {
    if (!s.count) continue;
    const bx = x(s.t) + (bw - barW) / 2;
    const by = y(s.count);
    d += `M${r1(bx)} ${r1(M.top + ph)}V${r1(by)}h${r1(barW)}V${r1(M.top + ph)}Z`;
  }
  svg.append(el("path", { d: d || "M0 0", class: "bars" }));

  // Threshold: a step line with gaps where no threshold exists yet.
  let line = "";
  let prev = null;
  for (const s of series) {
    if (s.upper === null) {
      prev = null;
      continue;
    }
    const yy = r1(y(s.upper));
    if (prev === null) line += `M${r1(x(s.t))} ${yy}`;
    else if (prev !== yy) line += `V${yy}`;
    line += `H${r1(x(s.t + HOUR))}`;
    prev = yy;
  }
  if (line) svg.append(el("path", { d: line, class: "threshold" }));

  // Alerts.
  const dots = el("g", { class: "marks" });
  for (const m of marks) {
    const cx = r1(x(m.t) + bw / 2);
    dots.append(el("line", { x1: cx, x2: cx, y1: M.top, y2: M.top + ph, class: "mark-line" }));
    dots.append(el("circle", { cx, cy: r1(y(m.count)), r: 4.5 }));
  }
  svg.append(dots);

  // Hover read-out.
  const cursor = el("line", { class: "cursor", x1: 0, x2: 0, y1: M.top, y2: M.top + ph, visibility: "hidden" });
  svg.append(cursor);
  if (tooltip) {
    const markAt = new Map(marks.map((m) => [m.t, m]));
    svg.addEventListener("mousemove", (e) => {
      const box = svg.getBoundingClientRect();
      const vx = ((e.clientX - box.left) / box.width) * W;
      const i = Math.floor((vx - M.left) / bw);
      if (i < 0 || i >= n) {
        cursor.setAttribute("visibility", "hidden");
        tooltip.hidden = true;
        return;
      }
      const s = series[i];
      const cx = r1(x(s.t) + bw / 2);
      cursor.setAttribute("x1", cx);
      cursor.setAttribute("x2", cx);
      cursor.setAttribute("visibility", "visible");
      const local = new Date(s.t + offsetMs);
      const when = `${WEEKDAYS[local.getUTCDay()]} ${local.toISOString().slice(0, 10)} ${local.toISOString().slice(11, 13)}:00`;
      const alert = markAt.get(s.t);
      tooltip.innerHTML =
        `<div class="tt-when">${when}${offsetMs ? " local" : " UTC"}</div>` +
        `<div><b>${s.count}</b> call${s.count === 1 ? "" : "s"}</div>` +
        (s.upper !== null ? `<div>threshold ${s.upper} <span class="muted">(${s.n} samples)</span></div>` : `<div class="muted">no threshold yet (&lt; 16 samples)</div>`) +
        (alert ? `<div class="tt-alert">alert: ${alert.count} &gt; ${alert.upper}</div>` : "");
      tooltip.hidden = false;
      const tw = tooltip.offsetWidth;
      const left = e.pageX + 14 + tw > window.scrollX + document.documentElement.clientWidth ? e.pageX - tw - 14 : e.pageX + 14;
      tooltip.style.left = `${left}px`;
      tooltip.style.top = `${e.pageY + 12}px`;
    });
    svg.addEventListener("mouseleave", () => {
      cursor.setAttribute("visibility", "hidden");
      tooltip.hidden = true;
    });
  }
  return svg;
}
