// Live page of a prompt-optimization run: the candidates table grows and the Pareto-front chart redraws as candidates
// are scored. Both start from what the page embedded (a reload restores everything), then follow the job's events:
// each candidate's metric event carries the whole candidate and the front it leaves.
(function () {
  "use strict";
  const state = JSON.parse(document.getElementById("prompt-run-live").textContent);
  const rows = document.querySelector('[data-role="candidate-rows"]');
  const template = document.querySelector('[data-role="candidate-template"]');
  const canvas = document.querySelector('[data-role="front-chart"]');
  const PROMPT_CHARS = 400; // as the server's rows cut long prompts
  const points = new Map(state.points.map((point) => [point.index, point])); // the candidates with a validation score
  let front = new Set(state.front);
  let chart = null;

  function number(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function field(row, name) {
    return row.querySelector('[data-field="' + name + '"]');
  }

  function drawRow(row, c) {
    row.dataset.index = c.index;
    field(row, "index").textContent = c.index;
    field(row, "parent").textContent = c.parent === null ? "–" : "#" + c.parent;
    field(row, "status").textContent = state.statuses[c.status] || c.status;
    field(row, "note").textContent = c.note || "";
    field(row, "note-break").hidden = !c.note;
    field(row, "minibatch").textContent = c.minibatch_score === null || c.minibatch_score === undefined ? "–"
      : number(c.minibatch_parent_score, 2) + " → " + number(c.minibatch_score, 2);
    field(row, "val_score").textContent = number(c.val_score, 3);
    field(row, "calls_used").textContent = c.calls_used;
    const prompt = c.prompt || "(none)";
    field(row, "prompt").textContent = prompt.length > PROMPT_CHARS ? prompt.slice(0, PROMPT_CHARS - 1) + "…" : prompt;
    const save = field(row, "save");
    save.querySelector('input[name="index"]').value = c.index;
    save.hidden = c.val_score === null || c.val_score === undefined || !c.prompt;
  }

  function drawFront() {
    rows.querySelectorAll('[data-role="candidate"]').forEach((row) => {
      field(row, "front").hidden = !front.has(Number(row.dataset.index));
    });
  }

  function addCandidate(c) {
    let row = rows.querySelector('[data-role="candidate"][data-index="' + c.index + '"]');
    if (!row) {
      row = template.content.firstElementChild.cloneNode(true);
      rows.insertBefore(row, rows.querySelector('[data-role="no-candidates"]'));
    }
    drawRow(row, c);
    rows.querySelector('[data-role="no-candidates"]').hidden = true;
    if (c.val_score !== null && c.val_score !== undefined) points.set(c.index, { index: c.index, val_score: c.val_score, calls_used: c.calls_used });
  }

  // Kept prompts by the calls used when they were scored: those on the front, the others, and the best so far.
  function chartData() {
    const sorted = Array.from(points.values()).sort((a, b) => a.calls_used - b.calls_used || a.index - b.index);
    const point = (p) => ({ x: p.calls_used, y: p.val_score, index: p.index });
    let best = -Infinity;
    const bestSoFar = sorted.map((p) => { best = Math.max(best, p.val_score); return { x: p.calls_used, y: best, index: p.index }; });
    return [sorted.filter((p) => front.has(p.index)).map(point), sorted.filter((p) => !front.has(p.index)).map(point), bestSoFar];
  }

  function drawChart() {
    if (typeof Chart === "undefined" || !canvas) return;
    const [onFront, others, bestSoFar] = chartData();
    document.querySelector('[data-role="front-empty"]').hidden = points.size > 0;
    if (!chart) {
      chart = new Chart(canvas, {
        type: "scatter",
        data: { datasets: [
          { label: "On the front", data: onFront, backgroundColor: "#2b8a3e", borderColor: "#2b8a3e", pointRadius: 6 },
          { label: "Other kept prompts", data: others, backgroundColor: "#adb5bd", borderColor: "#adb5bd", pointRadius: 5 },
          { label: "Best so far", data: bestSoFar, showLine: true, stepped: true, pointRadius: 0, borderColor: "#2f6fed", borderWidth: 2 },
        ] },
        options: { animation: false, parsing: false, responsive: true,
                   plugins: { tooltip: { callbacks: { label: (item) => "#" + item.raw.index + ": " + Number(item.raw.y).toFixed(3) } } },
                   scales: { x: { type: "linear", title: { display: true, text: "model calls used" } },
                             y: { title: { display: true, text: "validation score" }, suggestedMin: 0, suggestedMax: 1 } } },
      });
    } else {
      [onFront, others, bestSoFar].forEach((data, i) => { chart.data.datasets[i].data = data; });
      chart.update("none");
    }
  }

  drawChart();
  if (!state.job) return;
  window.garageLive.jobEvents(state.job, state.after, {
    root: document.querySelector('[data-role="candidates"]'),
    onEvent: (event) => {
      const data = event.data;
      if (event.type !== "metric" || data.candidate === undefined) return;
      addCandidate({ index: data.candidate, parent: data.parent === -1 ? null : data.parent, status: data.status,
                     note: data.note, prompt: data.prompt, val_score: data.val_score, calls_used: data.calls_used,
                     minibatch_score: data.minibatch_score, minibatch_parent_score: data.minibatch_parent_score });
      if (data.front) front = new Set(data.front);
      drawFront();
      drawChart();
    },
  });
})();
