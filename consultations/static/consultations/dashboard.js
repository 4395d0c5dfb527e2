// The staff SLA dashboard's refresh: every 30 seconds the figures and lists are
// fetched again and swapped in place, for the period in the page's URL. A section the
// user is in stays as it is; choices made but not sent survive the swap elsewhere.
(function () {
  "use strict";

  var root = document.querySelector(".sla-dashboard[data-live-url]");
  if (!root || !window.fetch) {
    return;
  }
  var seconds = parseInt(root.getAttribute("data-refresh-seconds"), 10) || 30;
  var idleLimit = (parseInt(root.getAttribute("data-idle-seconds"), 10) || 0) * 1000;
  var status = root.querySelector("[data-live-status]");
  var lastActivity = Date.now();
  var timer = null;
  var paused = false;

  function setStatus(text, isError) {
    if (!status) {
      return;
    }
    status.textContent = text;
    status.classList.toggle("is-error", Boolean(isError));
  }

  // Never replace a section while someone is using it (e.g. choosing a doctor to reassign to).
  function inUse(section) {
    var active = document.activeElement;
    return active && active !== document.body && section.contains(active);
  }

  // What the user has chosen or typed but not sent yet (e.g. a doctor picked in a reassign
  // select, then the mouse moved on to read the row): kept by id across the swap, so a
  // refresh never undoes a half-made choice. Only values that differ from the page's own.
  function choicesIn(section) {
    var chosen = [];
    section.querySelectorAll("select[id], input[id], textarea[id]").forEach(function (control) {
      if (control.type === "hidden" || control.type === "submit") {
        return;
      }
      if (control.tagName === "SELECT") {
        var changed = Array.prototype.some.call(control.options, function (option) {
          return option.selected !== option.defaultSelected;
        });
        if (changed) {
          chosen.push({ id: control.id, value: control.value });
        }
      } else if (control.type === "checkbox" || control.type === "radio") {
        if (control.checked !== control.defaultChecked) {
          chosen.push({ id: control.id, checked: control.checked });
        }
      } else if (control.value !== control.defaultValue) {
        chosen.push({ id: control.id, value: control.value });
      }
    });
    return chosen;
  }

  function reapply(chosen) {
    chosen.forEach(function (choice) {
      var control = document.getElementById(choice.id);
      if (!control) {
        return; // The row left the list (answered or reassigned meanwhile).
      }
      if ("checked" in choice) {
        control.checked = choice.checked;
        return;
      }
      if (control.tagName === "SELECT") {
        // Only a choice the new list still offers.
        var offered = Array.prototype.some.call(control.options, function (option) {
          return option.value === choice.value;
        });
        if (!offered) {
          return;
        }
      }
      control.value = choice.value;
    });
  }

  function liveUrl() {
    // The period lives in the page's URL, so a refresh (or a reload) keeps it.
    var url = new URL(root.getAttribute("data-live-url"), window.location.href);
    var period = new URLSearchParams(window.location.search).get("period");
    if (period) {
      url.searchParams.set("period", period);
    }
    return url.toString();
  }

  function apply(data) {
    Object.keys(data.sections || {}).forEach(function (name) {
      var section = root.querySelector('[data-live-section="' + name + '"]');
      if (!section || inUse(section)) {
        return;
      }
      // Whatever the reader opened (the chart's table) stays open after the swap.
      var opened = Array.prototype.map.call(section.querySelectorAll("details[id][open]"), function (el) {
        return el.id;
      });
      var chosen = choicesIn(section);
      section.innerHTML = data.sections[name];
      reapply(chosen);
      opened.forEach(function (id) {
        var details = document.getElementById(id);
        if (details) {
          details.open = true;
        }
      });
    });
    var stamp = new Date(data.generated_at);
    // With the zone, as every time the portal shows (portal/times.py).
    setStatus("Updated " + stamp.toLocaleTimeString([], { timeZoneName: "short" }) + ".", false);
  }

  function refresh() {
    timer = null;
    if (document.hidden) {
      return;
    }
    if (idleLimit && Date.now() - lastActivity > idleLimit) {
      paused = true;
      setStatus("Automatic refresh paused while you are away. Move the mouse or press a key to resume.", false);
      return;
    }
    fetch(liveUrl(), {
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "fetch", "X-Background-Refresh": "1" },
      redirect: "manual",
    })
      .then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
          throw new Error("signed-out");
        }
        if (!response.ok) {
          throw new Error("http-" + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        apply(data);
        schedule();
      })
      .catch(function (error) {
        if (error.message === "signed-out") {
          setStatus("You have been signed out. Reload the page to sign in again.", true);
          return;
        }
        setStatus("Could not refresh the figures; retrying in " + seconds + " s.", true);
        schedule();
      });
  }

  function schedule() {
    if (timer === null) {
      timer = window.setTimeout(refresh, seconds * 1000);
    }
  }

  function activity() {
    lastActivity = Date.now();
    if (paused) {
      paused = false;
      refresh();
    }
  }

  ["mousemove", "keydown", "pointerdown", "scroll", "touchstart"].forEach(function (name) {
    window.addEventListener(name, activity, { passive: true });
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer === null && !paused) {
      refresh();
    }
  });

  // Print the chart's figures too: closed <details> would print as a single line.
  var openedForPrint = [];
  window.addEventListener("beforeprint", function () {
    openedForPrint = Array.prototype.filter.call(root.querySelectorAll("details:not([open])"), function (el) {
      el.open = true;
      return true;
    });
  });
  window.addEventListener("afterprint", function () {
    openedForPrint.forEach(function (el) {
      el.open = false;
    });
    openedForPrint = [];
  });

  setStatus("Refreshes every " + seconds + " s.", false);
  schedule();
})();
