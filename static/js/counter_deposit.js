/* Depositing a person's paper folder at the counter (templates/social_workers/dashboard/deposit.html)
   in three actions: pick (or drop) all the files, "Continue", "Deposit". "Continue" asks the server
   what each file probably is (social_workers:counter_deposit_suggestions: kind, title, date from
   the file name) and shows one editable row per file; "Deposit" posts the files with their rows.
   Progressive enhancement only: without this file the form posts the files alone and the server
   makes the same guesses. Every text comes from the page, so it is translated with it. */
(function () {
  "use strict";

  function setUp(form) {
    if (!window.FormData || !window.fetch) { return; }
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector("[data-drop-zone]");
    var rows = form.querySelector("[data-file-rows]");
    var template = form.querySelector("template[data-row-template]");
    var status = form.querySelector("[data-status]");
    var next = form.querySelector("[data-continue]");
    var deposit = form.querySelector("[data-deposit-button]");
    var defaults = form.querySelector("[data-defaults]");
    var asked = 0;

    function stepOne() {
      rows.textContent = "";
      defaults.hidden = false;
      next.hidden = false;
      deposit.hidden = true;
    }

    function showRows(suggestions) {
      rows.textContent = "";
      Array.prototype.forEach.call(input.files, function (file, index) {
        var guess = suggestions[index] || {};
        var row = template.content.firstElementChild.cloneNode(true);
        row.querySelector("[data-name]").textContent = file.name;
        ["type", "title", "date"].forEach(function (field) {
          var control = row.querySelector("[data-field=" + field + "]");
          control.id = "deposit-" + field + "-" + index;
          row.querySelector("[data-for=" + field + "]").htmlFor = control.id;
        });
        row.querySelector("[data-field=type]").value = guess.doc_type || "";
        row.querySelector("[data-field=title]").value = guess.title || "";
        row.querySelector("[data-field=date]").value = guess.act_date || "";
        rows.appendChild(row);
      });
      defaults.hidden = true;  // each row says its own kind
      next.hidden = true;
      deposit.hidden = false;
      var first = rows.querySelector("select");
      if (first) { first.focus(); }
    }

    next.addEventListener("click", function () {
      var ticket = ++asked;
      if (!input.files.length) { form.requestSubmit(deposit); return; }  // the server says a file is missing
      window.dmp.suggestions(form, input.files).then(function (suggestions) {
        if (ticket === asked) { showRows(suggestions); }
      }).catch(function () {
        // No answer: depositing still works, the server suggests from the names.
        status.textContent = form.dataset.failed;
        next.hidden = true;
        deposit.hidden = false;
      });
    });
    input.addEventListener("change", stepOne);

    function showErrors(errors) {
      var box = window.dmp.showErrors(form, errors, "errorlist");
      if (box.scrollIntoView) { box.scrollIntoView({block: "nearest"}); }
    }

    // "Deposit": posted by the script so that a refusal keeps the files picked and their rows.
    form.addEventListener("submit", function (event) {
      if (!input.files.length) { return; }  // the server says a file is missing
      event.preventDefault();
      deposit.disabled = true;
      status.textContent = form.dataset.sending;
      fetch(form.action || window.location.href, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: {"X-Requested-With": "XMLHttpRequest"}
      }).then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      }).then(function (answer) {
        if (answer.ok && answer.data.location) { window.location.assign(answer.data.location); return; }
        deposit.disabled = false;
        status.textContent = "";
        showErrors(answer.data.errors || [form.dataset.failedDeposit]);
      }).catch(function () {
        deposit.disabled = false;
        status.textContent = form.dataset.failedDeposit;
      });
    });

    if (zone && window.DataTransfer) {
      window.dmp.dropZone(zone, input, stepOne);
    }
    stepOne();
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-deposit]"), setUp);
}());
