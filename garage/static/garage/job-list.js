// Live list of the signed-in user's newest jobs (the dashboard): the rows the server rendered change as their jobs
// do, and new jobs appear at the top, from the user's websocket of jobs (/ws/jobs/). Its first message, a snapshot
// of the newest jobs, also catches up with whatever changed while the page loaded or the connection was down.
(function () {
  "use strict";
  const root = document.querySelector('[data-role="recent-jobs"]');
  if (!root || !window.garageLive) return;
  const list = root.querySelector('[data-role="job-list"]');
  const template = root.querySelector('[data-role="job-row-template"]');
  const limit = Number(root.dataset.limit);
  const PLACEHOLDER = "00000000-0000-0000-0000-000000000000";

  function rowOf(code) {
    return list.querySelector('[data-role="job-row"][data-job="' + code + '"]');
  }

  function draw(row, job) {
    row.dataset.job = job.code;
    row.dataset.created = job.created_at;
    row.dataset.status = job.status;
    const link = row.querySelector('[data-role="job-link"]');
    link.href = root.dataset.jobUrl.replace(PLACEHOLDER, job.code);
    link.textContent = job.title;
    const badge = row.querySelector('[data-role="job-status"]');
    badge.textContent = job.status_display;
    badge.className = "badge " + job.status;
    const percent = Math.round((job.progress || 0) * 100);
    const bar = row.querySelector('[data-role="job-bar"]');
    bar.firstElementChild.style.width = percent + "%";
    bar.setAttribute("aria-valuenow", percent);
  }

  function upsert(job) {
    let row = rowOf(job.code);
    if (!row) {
      row = template.content.firstElementChild.cloneNode(true);
      list.appendChild(row);
    }
    draw(row, job);
    return row;
  }

  // Newest first, as the server orders them, and no more than the page shows.
  function arrange() {
    const rows = Array.from(list.querySelectorAll('[data-role="job-row"]'));
    rows.sort((a, b) => Date.parse(b.dataset.created) - Date.parse(a.dataset.created));
    rows.forEach((row, i) => { if (i < limit) list.appendChild(row); else row.remove(); });
    root.querySelector('[data-role="no-jobs"]').hidden = rows.length > 0;
  }

  window.garageLive.follow(root.dataset.ws, (data) => {
    if (data.type === "snapshot") {
      // The snapshot is the truth about the newest jobs: rows it does not hold (a deleted job) go.
      const kept = new Set(data.jobs.map((job) => upsert(job)));
      list.querySelectorAll('[data-role="job-row"]').forEach((row) => { if (!kept.has(row)) row.remove(); });
    } else if (data.type === "update") {
      upsert(data.job);
    }
    arrange();
  }, { root });
})();
