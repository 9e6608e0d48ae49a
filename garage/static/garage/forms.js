// Small behaviours that pages declare with data attributes. Inline event handlers (onsubmit="…") would be refused
// by the Content-Security-Policy, which lets only this server's script files run.
(function () {
  "use strict";
  // <form data-confirm="Delete …?">: asks before sending the form.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
    if (question && !window.confirm(question)) event.preventDefault();
  });
  // <input data-select-on-click>: a click selects the whole value, ready to copy.
  document.addEventListener("click", function (event) {
    var field = event.target;
    if (field instanceof HTMLInputElement && field.hasAttribute("data-select-on-click")) field.select();
  });
})();
