// The no-code reward builder: edits the reward specs (JSON in the form's textarea) through one card per function.
// The textarea stays the single source of truth, so the API's JSON, the cards and what is posted always agree.
(function () {
  "use strict";
  const library = JSON.parse(document.getElementById("reward-library").textContent);
  const providers = JSON.parse(document.getElementById("reward-providers").textContent);
  const byType = Object.fromEntries(library.map((entry) => [entry.type, entry]));
  const root = document.querySelector('[data-role="builder"]');
  const list = root.querySelector('[data-role="functions"]');
  const textarea = document.querySelector('[data-role="rewards-json"]');

  function read() {
    try {
      const specs = JSON.parse(textarea.value || "[]");
      return Array.isArray(specs) ? specs : [];
    } catch (error) {
      return null;
    }
  }

  function write(specs) { textarea.value = JSON.stringify(specs, null, 1); }

  function element(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => node.setAttribute(key, value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function input(param, value, onChange) {
    const kind = param.kind;
    let control;
    if (kind === "bool") {
      control = element("input", { type: "checkbox" });
      control.checked = Boolean(value);
      control.addEventListener("change", () => onChange(control.checked));
    } else if (kind.startsWith("choice:") || kind === "provider") {
      control = element("select");
      const options = kind === "provider" ? providers : kind.slice(7).split("|").map((v) => [v, v]);
      if (kind === "provider" && !options.length) control.appendChild(element("option", { value: "" }, "No chat endpoint: add a provider first"));
      options.forEach(([optionValue, label]) => control.appendChild(element("option", { value: optionValue }, label)));
      control.value = value;
      if (control.value !== value && options.length) onChange(control.value);
      control.addEventListener("change", () => onChange(control.value));
    } else if (kind === "longtext") {
      control = element("textarea", { rows: 3 });
      control.value = value || "";
      control.addEventListener("input", () => onChange(control.value));
    } else if (kind === "tags") {
      control = element("input", { type: "text" });
      control.value = (value || []).join(", ");
      control.addEventListener("input", () => onChange(control.value.split(/[\s,]+/).filter(Boolean)));
    } else {
      const numeric = kind === "number" || kind === "integer";
      control = element("input", { type: numeric ? "number" : "text", step: kind === "integer" ? "1" : "any" });
      control.value = value === undefined || value === null ? "" : value;
      control.addEventListener("input", () => onChange(numeric && control.value !== "" ? Number(control.value) : control.value));
    }
    control.dataset.param = param.name;
    return control;
  }

  function render() {
    const specs = read();
    list.textContent = "";
    if (specs === null) {
      list.appendChild(element("p", { class: "error" }, "The JSON below is not valid; fix it or clear it to use the builder."));
      return;
    }
    if (!specs.length) list.appendChild(element("p", { class: "muted" }, "No reward functions yet: add one below."));
    specs.forEach((spec, index) => {
      const entry = byType[spec.type];
      const card = element("div", { class: "card", "data-role": "function", "data-type": spec.type || "" });
      if (!entry) {
        card.appendChild(element("p", { class: "error" }, "Unknown type " + spec.type));
        list.appendChild(card);
        return;
      }
      const head = element("p");
      head.appendChild(element("strong", {}, entry.label));
      const remove = element("button", { type: "button", class: "link", "data-role": "remove-function" }, "Remove");
      remove.addEventListener("click", () => { const all = read(); all.splice(index, 1); write(all); render(); });
      head.appendChild(document.createTextNode(" "));
      head.appendChild(remove);
      card.appendChild(head);
      card.appendChild(element("p", { class: "muted small" }, entry.description));
      const update = (name) => (value) => { const all = read(); all[index][name] = value; write(all); };
      const params = [{ name: "weight", kind: "number", default: 1.0, help: "How much this function counts in the total reward." },
                      { name: "name", kind: "text", default: "", help: "A short name for charts (optional)." }].concat(entry.params);
      params.forEach((param) => {
        const row = element("p");
        const label = element("label", {}, param.name.replace(/_/g, " ") + " ");
        const value = spec[param.name] === undefined ? param.default : spec[param.name];
        label.appendChild(input(param, value, update(param.name)));
        row.appendChild(label);
        if (param.help) { row.appendChild(element("br")); row.appendChild(element("span", { class: "muted small" }, param.help)); }
        card.appendChild(row);
      });
      list.appendChild(card);
    });
  }

  root.querySelector('[data-role="add-function"]').addEventListener("click", () => {
    const type = root.querySelector('[data-role="add-type"]').value;
    const spec = { type: type, weight: 1.0 };
    byType[type].params.forEach((param) => { spec[param.name] = param.default; });
    if (type === "judge" && providers.length) spec.provider = providers[0][0];
    const specs = read() || [];
    specs.push(spec);
    write(specs);
    render();
  });
  textarea.addEventListener("change", render);
  render();
})();
