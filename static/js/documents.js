/* Adding documents (portal_patient/documents/add.html): drag and drop onto the file field and
   an upload progress bar. Progressive enhancement only: without this file the form posts the
   same files and the server answers the same way. Messages come from the page (data-*), so
   they are translated like the rest of it. */
(function () {
  "use strict";

  function humanSize(bytes) {
    if (bytes >= 1048576) { return (bytes / 1048576).toFixed(1) + " MB"; }
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  function setUp() {
    var form = document.getElementById("doc-upload");
    if (!form || !window.FormData || !window.XMLHttpRequest || !window.DOMParser) { return; }
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector("[data-drop-zone]");
    var list = form.querySelector("[data-file-list]");
    var hint = form.querySelector("[data-drop-hint]");
    var progress = form.querySelector("progress");
    var status = form.querySelector("[data-upload-status]");
    var button = form.querySelector("button[type=submit]");

    function showFiles() {
      list.textContent = "";
      Array.prototype.forEach.call(input.files, function (file) {
        var item = document.createElement("li");
        item.textContent = file.name + " (" + humanSize(file.size) + ")";
        list.appendChild(item);
      });
    }
    input.addEventListener("change", showFiles);

    if (zone && window.DataTransfer && "ondrop" in zone) {
      hint.hidden = false;
      window.dmp.dropZone(zone, input, showFiles);
    }

    form.addEventListener("submit", function (event) {
      if (!input.files.length) { return; }  // the server says what is missing
      event.preventDefault();
      var request = new XMLHttpRequest();
      request.open("POST", form.getAttribute("action") || window.location.href);
      request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      button.disabled = true;
      progress.hidden = false;
      progress.value = 0;
      request.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) { return; }
        var percent = Math.round(e.loaded / e.total * 100);
        progress.value = percent;
        status.textContent = percent < 100 ? form.dataset.sending.replace("{percent}", percent)
                                            : form.dataset.processing;
      });
      request.addEventListener("load", function () {
        var type = request.getResponseHeader("Content-Type") || "";
        if (request.status === 200 && type.indexOf("application/json") === 0) {
          window.location.assign(JSON.parse(request.responseText).location);
          return;
        }
        // Refused files or a form error: the server's page, as without JavaScript.
        var page = new DOMParser().parseFromString(request.responseText, "text/html");
        var main = page.querySelector("main");
        if (type.indexOf("text/html") === 0 && main) {
          document.querySelector("main").innerHTML = main.innerHTML;
          window.scrollTo(0, 0);
          setUp();
        } else {
          failed();
        }
      });
      request.addEventListener("error", failed);
      request.send(new FormData(form));

      function failed() {
        button.disabled = false;
        progress.hidden = true;
        status.textContent = form.dataset.failed;
      }
    });
  }

  setUp();
}());
