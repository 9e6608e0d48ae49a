// The playground: one prompt to every column's model over one websocket; pieces of each answer are appended as
// they arrive. Each column keeps its own conversation (user turns and that model's answers) in memory.
(function () {
  const root = document.querySelector("[data-role=playground]");
  if (!root) return;
  const $ = (role, scope) => (scope || root).querySelector(`[data-role=${role}]`);
  const columns = Array.from(root.querySelectorAll("[data-role=column]")).map((el) => ({
    el, model: el.dataset.model, history: [], pending: null, bubble: null, text: "",
  }));
  const form = $("prompt-form"), stopButton = $("stop"), connection = $("connection");
  let socket = null, retry = 0, closedForGood = false;

  function setState(column, state, status) {
    column.el.dataset.state = state;
    if (status !== undefined) $("status", column.el).textContent = status;
    stopButton.disabled = !columns.some((c) => c.el.dataset.state === "queued" || c.el.dataset.state === "streaming");
  }

  function bubble(column, role, text) {
    const placeholder = $("placeholder", column.el);
    if (placeholder) placeholder.remove();
    const div = document.createElement("div");
    div.className = `turn ${role}`;
    div.dataset.role = role === "assistant" ? "answer" : "question";
    div.textContent = text;
    $("transcript", column.el).appendChild(div);
    div.scrollIntoView({block: "nearest"});
    return div;
  }

  function connect() {
    const query = columns.map((c) => "model=" + encodeURIComponent(c.model)).join("&");
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/playground/?${query}`);
    socket.onopen = () => { retry = 0; };
    socket.onmessage = (event) => handle(JSON.parse(event.data));
    socket.onclose = (event) => {
      for (const column of columns) {
        if (column.pending) { column.pending = null; setState(column, "error", "The connection dropped; send again."); }
      }
      if (event.code === 4404 || event.code === 4400) {
        closedForGood = true;
        connection.textContent = "These models are not available to you. Pick models above.";
        return;
      }
      connection.textContent = "Reconnecting…";
      setTimeout(connect, Math.min(10000, 500 * 2 ** retry++));
    };
  }

  function handle(message) {
    if (message.type === "ready") { connection.textContent = "Connected."; root.dataset.ready = "true"; return; }
    const column = columns[message.column];
    if (!column) {
      if (message.type === "error") connection.textContent = message.message;
      return;
    }
    if (message.type === "queued") {
      setState(column, "queued", "Waiting for a worker…");
    } else if (message.type === "started") {
      const loaded = message.load_seconds > 1 ? ` (model loaded in ${message.load_seconds.toFixed(1)} s)` : "";
      setState(column, "streaming", "Writing…" + loaded);
    } else if (message.type === "piece") {
      column.text += message.text;
      column.bubble.textContent = column.text;
    } else if (message.type === "done") {
      const usage = message.usage || {};
      column.history.push(column.pending, {role: "assistant", content: column.text});
      column.pending = null;
      const speed = message.tokens_per_s ? `, ${message.tokens_per_s} tokens/s` : "";
      const ending = usage.finish_reason === "length" ? " — stopped at the token limit" : "";
      setState(column, "done", `${usage.completion_tokens || 0} tokens${speed}${ending}`);
    } else if (message.type === "error") {
      column.pending = null;
      if (column.bubble && !column.text) column.bubble.remove();
      setState(column, "error", message.message);
      $("status", column.el).classList.add("error");
    }
  }

  function options() {
    const value = (role) => $(role).value;
    return {temperature: value("temperature"), top_p: value("top_p"), max_tokens: value("max_tokens"), seed: value("seed")};
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const prompt = $("prompt").value.trim();
    if (!prompt || !socket || socket.readyState !== WebSocket.OPEN) return;
    const system = $("system").value.trim();
    columns.forEach((column, index) => {
      $("status", column.el).classList.remove("error");
      column.pending = {role: "user", content: prompt};
      const messages = (system ? [{role: "system", content: system}] : []).concat(column.history, [column.pending]);
      bubble(column, "user", prompt);
      column.text = "";
      column.bubble = bubble(column, "assistant", "");
      socket.send(JSON.stringify({type: "generate", column: index, messages, options: options()}));
      setState(column, "queued", "Sending…");
    });
    $("prompt").value = "";
  });
  $("prompt").addEventListener("keydown", (event) => {  // Enter sends, Shift+Enter makes a new line
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  stopButton.addEventListener("click", () => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: "stop"}));
  });
  $("clear").addEventListener("click", () => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: "stop"}));
    for (const column of columns) {
      column.history = []; column.pending = null; column.text = "";
      $("transcript", column.el).innerHTML = '<p class="muted small" data-role="placeholder">Answers from this model appear here.</p>';
      setState(column, "idle", "");
    }
  });
  // Picking a saved prompt puts its text into the system prompt box (the texts come with the page).
  const savedTexts = JSON.parse(document.getElementById("saved-prompt-texts")?.textContent || "{}");
  const savedSelect = $("saved-prompt");
  if (savedSelect) savedSelect.addEventListener("change", () => {
    if (savedSelect.value in savedTexts) $("system").value = savedTexts[savedSelect.value];
  });
  connect();
})();
