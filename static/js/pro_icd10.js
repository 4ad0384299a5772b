/* The ICD-10 picker of the synthesis form (templates/portal_pro/synthesis/edit.html): typing a
   code (E11) or words (diabetes) in a problem's code field fills the shared <datalist> with the
   matching codes of the real list, asked by POST (the words may be a diagnosis: never in a
   URL); picking one fills the label when it is empty. The "Find" box searches the same way.
   Without this file the form's "Find" and pick buttons do the same through the server. */
(function () {
  "use strict";

  var form = document.querySelector("form[data-icd10-url]");
  if (!form || !window.fetch || !window.FormData) { return; }
  var list = document.getElementById("icd10-options");
  var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var labels = {};
  var timer = null;
  var asked = 0;

  function search(term) {
    var ticket = ++asked;
    var body = new FormData();
    body.append("term", term);
    fetch(form.dataset.icd10Url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRFToken": token, "X-Requested-With": "XMLHttpRequest"}
    }).then(function (response) {
      return response.ok ? response.json() : {results: []};
    }).then(function (data) {
      if (ticket !== asked) { return; }
      list.textContent = "";
      data.results.forEach(function (result) {
        labels[result.code] = result.label;
        var option = document.createElement("option");
        option.value = result.code;
        option.textContent = result.code + " – " + result.label;
        list.appendChild(option);
      });
    }).catch(function () { return null; });
  }

  function later(term) {
    window.clearTimeout(timer);
    if (term.trim().length < 2) { return; }
    timer = window.setTimeout(function () { search(term); }, 200);
  }

  form.addEventListener("input", function (event) {
    var field = event.target;
    if (!field.matches || !field.matches("input.icd10-code")) { return; }
    var code = field.value.trim().toUpperCase();
    if (labels[code]) {
      // A code picked from the list: its label, unless the doctor wrote one.
      var label = field.closest("tr").querySelector("input[name=problem_label]");
      if (!label.value.trim()) { label.value = labels[code]; }
      return;
    }
    later(field.value);
  });

  var finder = document.getElementById("icd10-term");
  if (finder) {
    finder.setAttribute("list", "icd10-options");
    finder.addEventListener("input", function () { later(finder.value); });
    finder.addEventListener("keydown", function (event) {
      // Enter in the search box searches here, rather than saving the form.
      if (event.key === "Enter") { event.preventDefault(); search(finder.value); }
    });
    finder.addEventListener("change", function () {
      // A code picked in the search box goes to the first empty problem row.
      var code = finder.value.trim().toUpperCase();
      if (!labels[code]) { return; }
      var rows = form.querySelectorAll("tr.problem-row");
      var row = null;
      for (var i = 0; i < rows.length && !row; i += 1) {
        if (!rows[i].querySelector("input[name=problem_icd10]").value.trim()) { row = rows[i]; }
      }
      if (!row) {  // every row is taken: one more
        row = rows[rows.length - 1].cloneNode(true);
        Array.prototype.forEach.call(row.querySelectorAll("input"), function (input) { input.value = ""; });
        Array.prototype.forEach.call(row.querySelectorAll(".errorlist"), function (error) { error.remove(); });
        row.classList.remove("has-error");
        rows[rows.length - 1].parentNode.appendChild(row);
      }
      var codeField = row.querySelector("input[name=problem_icd10]");
      codeField.value = code;
      row.querySelector("input[name=problem_label]").value = labels[code];
      finder.value = "";
      codeField.focus();
    });
  }
}());
