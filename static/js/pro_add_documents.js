/* Adding documents from the clinician's screens (templates/portal_pro/_add_documents.html), in
   two actions: drop (or pick) the files, then "Add". When files arrive, the server says what
   each one probably is (portal_pro:document_suggestions: type and space from the file name
   and the profession, a title, a date) and a row per file shows it, editable; "Add" posts the
   files with those rows, and the page goes back where it was. Progressive enhancement only:
   without this file the form posts the files alone and the server makes the same guesses.
   Every text comes from the page (data-* and a <template>), so it is translated with it. */
(function () {
  "use strict";

  function setUp(form) {
    if (!window.FormData || !window.XMLHttpRequest || !window.fetch) { return; }
    var input = form.querySelector("input[type=file]");
    var zone = form.closest(".pro-add") || form.querySelector("[data-drop-zone]");
    var rows = form.querySelector("[data-file-rows]");
    var defaults = form.querySelector("[data-defaults]");
    var template = form.querySelector("template[data-row-template]");
    var status = form.querySelector("[data-status]");
    var button = form.querySelector("button[type=submit]");
    var asked = 0;

    function spaceOf(select) {
      var option = select.options[select.selectedIndex];
      return option && option.parentNode.tagName === "OPTGROUP" ? option.parentNode.label : "";
    }

    function showRows(suggestions) {
      rows.textContent = "";
      Array.prototype.forEach.call(input.files, function (file, index) {
        var guess = suggestions[index];
        var row = template.content.firstElementChild.cloneNode(true);
        var select = row.querySelector("select[name=file_type]");
        var space = row.querySelector("[data-space]");
        row.querySelector("[data-name]").textContent = file.name;
        select.value = guess.doc_type;
        space.textContent = spaceOf(select);
        row.querySelector("[data-source]").textContent =
          guess.source === "file_name" ? form.dataset.fromName : form.dataset.fromProfession;
        select.addEventListener("change", function () {
          space.textContent = spaceOf(select);
          row.querySelector("[data-source]").textContent = "";
        });
        row.querySelector("input[name=file_title]").value = guess.title;
        row.querySelector("input[name=file_date]").value = guess.act_date;
        rows.appendChild(row);
      });
      // Each file says its own type and date: the fields for all files are not needed.
      defaults.hidden = input.files.length > 0;
      if (rows.firstElementChild && rows.firstElementChild.scrollIntoView) {
        rows.firstElementChild.scrollIntoView({block: "nearest"});
      }
    }

    function suggest() {
      var ticket = ++asked;
      rows.textContent = "";
      defaults.hidden = false;
      if (!input.files.length) { return; }
      window.dmp.suggestions(form, input.files).then(function (suggestions) {
        // Files changed again meanwhile: only the latest answer counts. No answer at all: the
        // server suggests when the files are posted, as without this script.
        if (ticket === asked) { showRows(suggestions); }
      }).catch(function () { return null; });
    }
    input.addEventListener("change", suggest);

    if (zone && window.DataTransfer) {
      window.dmp.dropZone(zone, input, suggest);
    }

    function showErrors(errors) {
      window.dmp.showErrors(form, errors, "errorlist pro-add-errors");
    }

    form.addEventListener("submit", function (event) {
      if (!input.files.length) { return; }  // the browser (required) or the server says what is missing
      event.preventDefault();
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      button.disabled = true;
      status.textContent = form.dataset.sending;
      request.addEventListener("load", function () {
        var data = null;
        try { data = JSON.parse(request.responseText); } catch (error) { data = null; }
        if (request.status === 200 && data && data.location) {
          window.location.assign(data.location);
          return;
        }
        button.disabled = false;
        status.textContent = "";
        if (data && data.errors) { showErrors(data.errors); } else { failed(); }
      });
      request.addEventListener("error", failed);
      request.send(new FormData(form));

      function failed() {
        button.disabled = false;
        status.textContent = form.dataset.failed;
      }
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-pro-add]"), setUp);
}());
