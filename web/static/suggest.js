/* Autocomplete for the search box: titles, authors and subjects from /suggest.json, as the reader types.
   An ARIA 1.2 combobox: ArrowDown/ArrowUp move through the suggestions, Enter follows the chosen one
   (or submits the form when none is chosen), Escape closes the list; requests wait for a pause in typing. */
(function () {
  "use strict";
  var DELAY = 150;
  var input = document.getElementById("q");
  var list = document.getElementById("q-suggestions");
  if (!input || !list || !window.fetch) { return; }
  var endpoint = list.getAttribute("data-endpoint");
  var timer = null, active = -1, items = [], latest = 0;

  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("autocomplete", "off");

  function close() {
    list.hidden = true;
    list.textContent = "";
    items = [];
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function choose(index) {
    var options = list.querySelectorAll("[role=option]");
    active = index;
    for (var i = 0; i < options.length; i++) {
      options[i].setAttribute("aria-selected", i === index ? "true" : "false");
    }
    if (index >= 0 && options[index]) {
      input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({block: "nearest"});
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function show(suggestions) {
    list.textContent = "";
    items = suggestions;
    active = -1;
    if (!suggestions.length) { close(); return; }
    suggestions.forEach(function (s, i) {
      var li = document.createElement("li");
      li.id = list.id + "-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.className = "suggestion kind-" + s.kind;
      var text = document.createElement("span");
      text.className = "text";
      text.textContent = s.text;
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = list.getAttribute("data-label-" + s.kind) || s.kind;
      li.appendChild(text);
      li.appendChild(kind);
      li.addEventListener("mousedown", function (event) { event.preventDefault(); go(i); });
      list.appendChild(li);
    });
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function go(index) {
    if (items[index]) { window.location.href = items[index].url; }
  }

  function fetchSuggestions() {
    var text = input.value;
    var ticket = ++latest;
    if (text.trim().length < 1) { close(); return; }
    fetch(endpoint + "?q=" + encodeURIComponent(text), {headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : {suggestions: []}; })
      .then(function (data) { if (ticket === latest) { show(data.suggestions || []); } })
      .catch(function () { if (ticket === latest) { close(); } });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(fetchSuggestions, DELAY);
  });
  input.addEventListener("keydown", function (event) {
    if (list.hidden) { return; }
    if (event.key === "ArrowDown") {
      event.preventDefault();
      choose(active + 1 < items.length ? active + 1 : 0);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      choose(active > 0 ? active - 1 : items.length - 1);
    } else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      go(active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  input.addEventListener("blur", function () { setTimeout(close, 100); });
}());
