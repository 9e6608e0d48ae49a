// Live charts of a GRPO run: reward per function, KL and completion length, and the rolling completion samples.
// Draws the embedded history at once, then follows the job's events (the same stream as the progress panel): every
// step's rewards, and the completions with their scores whenever a step carries them.
(function () {
  "use strict";
  const root = document.querySelector('[data-role="charts"]');
  if (!root) return;
  const history = JSON.parse(document.getElementById("grpo-history").textContent);
  const names = JSON.parse(document.getElementById("grpo-functions").textContent);
  const colors = ["#2f6fed", "#e8590c", "#2b8a3e", "#ae3ec9", "#f08c00", "#0b7285", "#c92a2a", "#5c940d"];
  const lastId = history.length ? history[history.length - 1].id : 0;
  const charts = {};

  function lineChart(role, datasets, yLabel) {
    const canvas = root.querySelector('[data-role="' + role + '"]');
    if (typeof Chart === "undefined" || !canvas) return null;
    return new Chart(canvas, {
      type: "line",
      data: { datasets: datasets.map((d, i) => Object.assign({ data: [], borderColor: d.color || colors[i % colors.length],
                                                               pointRadius: 0, borderWidth: 2, tension: 0.2 }, d)) },
      options: { animation: false, parsing: false, responsive: true,
                 scales: { x: { type: "linear", title: { display: true, text: "step" } }, y: { title: { display: true, text: yLabel } } } },
    });
  }

  charts.reward = lineChart("reward-chart", [{ label: "total (weighted)", color: "#222", borderWidth: 3 }]
    .concat(names.map((name) => ({ label: name }))), "reward");
  charts.kl = lineChart("kl-chart", [{ label: "KL" }], "KL");
  charts.length = lineChart("length-chart", [{ label: "tokens" }], "tokens");

  function add(point) {
    if (point.step === undefined || point.reward === undefined) return;
    const empty = root.querySelector('[data-role="charts-empty"]');
    if (empty) empty.hidden = true;
    if (charts.reward) {
      charts.reward.data.datasets[0].data.push({ x: point.step, y: point.reward });
      names.forEach((name, i) => {
        const value = point["reward/" + name];
        if (value !== undefined) charts.reward.data.datasets[i + 1].data.push({ x: point.step, y: value });
      });
    }
    if (charts.kl && point.kl !== undefined) charts.kl.data.datasets[0].data.push({ x: point.step, y: point.kl });
    if (charts.length && point.completion_length !== undefined) charts.length.data.datasets[0].data.push({ x: point.step, y: point.completion_length });
    if (point.samples) showSamples(point.step, point.samples);
  }

  function redraw() {
    if (redraw.pending) return;
    redraw.pending = true;
    requestAnimationFrame(() => { redraw.pending = false; Object.values(charts).forEach((c) => c && c.update("none")); });
  }

  function showSamples(step, samples) {
    const body = document.querySelector('[data-role="samples-table"] tbody');
    if (!body) return;
    body.textContent = "";
    samples.forEach((sample) => {
      const row = document.createElement("tr");
      row.dataset.role = "sample";
      const cells = [String(step), sample.prompt, sample.completion].concat(names.map((name) => {
        const value = sample.scores[name];
        return value === null || value === undefined ? "–" : Number(value).toFixed(2);
      }));
      cells.forEach((text, i) => {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (i === 1 || i === 2) { cell.className = "small"; cell.style.whiteSpace = "pre-wrap"; }
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
  }

  history.forEach(add);
  redraw();

  const job = root.dataset.job;
  if (!job || !window.garageLive) return;
  window.garageLive.jobEvents(job, lastId, {
    root,
    onEvent: (event) => {
      if (event.type !== "metric") return;
      add(event.data);
      redraw();
    },
  });
})();
