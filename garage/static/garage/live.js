// Helpers of the live parts of pages (lists of jobs, charts and tables that grow while a job runs). The job panel
// itself (job.js) draws any job's progress, and shows or hides the texts that depend on its status (data-show-for).
(function () {
  "use strict";
  const FINAL = ["succeeded", "failed", "cancelled"];
  // Close codes meaning "not yours" or "not signed in": connecting again cannot help.
  const REFUSED = [4401, 4404];

  // Follow a websocket, connecting again with a growing delay when it drops, until `stopWhen()` or a refusal.
  // `path` may be a function, so that a reconnect asks only for what the page has not seen yet.
  function follow(path, onMessage, { root = null, stopWhen = () => false } = {}) {
    let delay = 500;
    function connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + (typeof path === "function" ? path() : path));
      ws.onopen = () => { delay = 500; if (root) root.dataset.connected = "1"; };
      ws.onmessage = (message) => onMessage(JSON.parse(message.data));
      ws.onclose = (close) => {
        if (root) root.dataset.connected = "0";
        if (REFUSED.includes(close.code) || stopWhen()) return;
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    connect();
  }

  // A job's events after `afterId` (what the page embedded is not sent again), each once and in order. Stops once the
  // job has ended.
  function jobEvents(code, afterId, { onEvent, root = null }) {
    let lastId = afterId || 0;
    let final = false;
    follow(() => "/ws/jobs/" + code + "/?after=" + lastId, (data) => {
      const events = data.type === "snapshot" ? data.events : (data.event ? [data.event] : []);
      events.forEach((event) => {
        if (event.id <= lastId) return;
        lastId = event.id;
        onEvent(event);
      });
      if (data.job) final = FINAL.includes(data.job.status);
    }, { root, stopWhen: () => final });
  }

  window.garageLive = { FINAL, follow, jobEvents };
})();
