/* Behaviour shared by every page. No inline script or event-handler attribute anywhere: the
   Content-Security-Policy forbids them, so pages mark elements with data- attributes instead. */
(function () {
  "use strict";
  // <select data-autosubmit>: choosing an option sends its form (the language switch).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]") && target.form) {
      target.form.submit();
    }
  });
  // <button data-print>: prints the page (credentials sheet, presentation).
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("button[data-print]")) {
      window.print();
    }
  });
  // Shared by the pages that take files (patient upload, professional add, counter deposit).
  window.dmp = {
    // A drop zone over a file input: dropped files become the input's, then onFiles() runs.
    dropZone: function (zone, input, onFiles) {
      ["dragenter", "dragover"].forEach(function (name) {
        zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
      });
      ["dragleave", "drop"].forEach(function (name) {
        zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
      });
      zone.addEventListener("drop", function (event) {
        event.preventDefault();
        if (!event.dataTransfer || !event.dataTransfer.files.length) { return; }
        try { input.files = event.dataTransfer.files; } catch (error) { return; }
        onFiles();
      });
    },
    // What each picked file probably is, from its name only: POSTs the names to the form's
    // data-suggest-url; a promise of the suggestions, rejected when the server does not answer.
    suggestions: function (form, files) {
      var body = new FormData();
      Array.prototype.forEach.call(files, function (file) { body.append("names", file.name); });
      var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
      return fetch(form.dataset.suggestUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: {"X-CSRFToken": token, "X-Requested-With": "XMLHttpRequest"}
      }).then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      }).then(function (data) { return data.suggestions; });
    },
    // The refusals of a form posted by script, in one alert box at the top of the form.
    showErrors: function (form, errors, className) {
      var box = form.querySelector("[data-errors]");
      if (!box) {
        box = document.createElement("div");
        box.className = className;
        box.setAttribute("role", "alert");
        box.setAttribute("data-errors", "");
        form.insertBefore(box, form.firstChild);
      }
      box.textContent = "";
      var list = document.createElement("ul");
      errors.forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        list.appendChild(item);
      });
      box.appendChild(list);
      return box;
    }
  };
})();
