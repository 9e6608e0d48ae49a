// The training forms' plan: every change of the model (the picker's list, or its text box under "Other…"), the
// method or a setting asks /api/v1/plan/ for the recommended settings and the planner's estimate.
// Settings the person typed are kept (sent as their choice); the others are filled with the recommendation.
(function () {
  "use strict";
  if (window.garageTrainingPlan) return; // one script tag per form: set up every form once
  window.garageTrainingPlan = true;

  var SETTINGS = ["max_steps", "learning_rate", "batch_size", "max_length", "lora_r", "lora_alpha", "warmup_ratio"];

  function messageOf(body) {
    if (!body) return "The estimate could not be made.";
    if (body.message) return body.message;
    if (body.detail) return body.detail;
    var key = Object.keys(body)[0];
    return key ? key.replace(/_/g, " ") + ": " + [].concat(body[key]).join(" ") : "The estimate could not be made.";
  }

  function fillList(list, items) {
    list.textContent = "";
    (items || []).forEach(function (text) {
      var item = document.createElement("span");
      item.className = "plan-line";
      item.style.display = "block";
      item.style.marginTop = "4px";
      item.textContent = text;
      list.appendChild(item);
    });
  }

  function setup(panel) {
    var form = panel.closest("form");
    if (!form) return;
    var select = form.querySelector("[data-role=model-select]");
    var other = form.querySelector("[data-role=model-other]");
    if (!select || !other) return;
    var method = form.elements.method;
    var backend = form.elements.backend;
    var documentText = form.elements.document_text;
    var summary = panel.querySelector("[data-role=plan-summary]");
    var warnings = panel.querySelector("[data-role=plan-warnings]");
    var reasons = panel.querySelector("[data-role=plan-reasons]");
    var notes = panel.querySelector("[data-role=plan-notes]");
    var touched = {};
    var timer = null;
    var asked = 0;

    // The plan goes just above the button that starts the run, where it is read last.
    var button = form.querySelector("button[type=submit], button:not([type])");
    if (button && button.parentNode) button.parentNode.insertBefore(panel, button);

    // The model as the form will post it (apps.training.widgets.ModelPicker).
    function chosenModel() {
      return select.value === "other" ? other.value.trim() : select.value;
    }

    select.addEventListener("change", function () {
      if (select.value === "other") {
        other.focus();
        if (!other.value.trim()) return; // the plan follows once a model is typed
      }
      modelChanged();
    });
    other.addEventListener("change", modelChanged);

    // Sending the form before the new model's plan has arrived would train it with the old model's settings: a
    // quick click (or one that leaves the "Other…" box, which is what changes the model) is sent once the plan is in.
    var planPending = false;
    var sendWhenPlanned = false;
    form.addEventListener("submit", function (event) {
      if (!planPending) return;
      event.preventDefault();
      sendWhenPlanned = true;
    });

    function modelChanged() {
      touched = {}; // a new model or method: its own recommendation for every setting
      planPending = true;
      schedule();
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    }

    function refresh() {
      var params = new URLSearchParams();
      params.set("base_model", chosenModel());
      if (method) params.set("method", method.value);
      if (backend) params.set("backend", backend.value);
      if (documentText) params.set("document_text", documentText.checked ? "true" : "false");
      if (panel.dataset.version) params.set("version", panel.dataset.version);
      else if (panel.dataset.dataset) params.set("dataset", panel.dataset.dataset);
      Object.keys(touched).forEach(function (name) {
        var field = form.elements[name];
        if (field && field.value !== "") params.set(name, field.value);
      });
      var mine = ++asked;
      panel.setAttribute("aria-busy", "true");
      fetch(panel.dataset.url + "?" + params.toString(), {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          return response.json().catch(function () { return null; }).then(function (body) {
            return {ok: response.ok, body: body};
          });
        })
        .then(function (answer) {
          if (mine !== asked) return; // a newer question is on its way
          if (answer.ok) show(answer.body); else showError(answer.body);
        })
        .catch(function () { if (mine === asked) showError(null); })
        .then(function () {
          if (mine !== asked) return;
          panel.removeAttribute("aria-busy");
          planPending = false;
          if (sendWhenPlanned) {
            sendWhenPlanned = false;
            form.requestSubmit();
          }
        });
    }

    function show(plan) {
      SETTINGS.forEach(function (name) {
        var field = form.elements[name];
        // Fields decided from documents not read yet (the pipeline form) stay empty until the person types.
        if (field && field.dataset.fromDocuments) return;
        if (field && !touched[name] && plan.options[name] !== undefined) field.value = plan.options[name];
      });
      summary.textContent = plan.summary;
      fillList(warnings, plan.warnings);
      fillList(reasons, plan.reasons);
      notes.textContent = (plan.notes || []).join(" ");
    }

    function showError(body) {
      summary.textContent = messageOf(body);
      fillList(warnings, []);
      fillList(reasons, []);
    }

    if (method) method.addEventListener("change", modelChanged);
    if (backend) backend.addEventListener("change", schedule);
    if (documentText) documentText.addEventListener("change", schedule);
    SETTINGS.forEach(function (name) {
      var field = form.elements[name];
      if (!field) return;
      field.addEventListener("input", function () {
        touched[name] = true;
        schedule();
      });
    });
    // A form shown again after an error has no plan yet.
    if (!summary.textContent.trim()) refresh();
  }

  function start() {
    document.querySelectorAll("[data-role=training-plan]").forEach(setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
