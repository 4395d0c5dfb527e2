// Doctors' workbench: a double click must not send the same reply twice.
// (Buttons are not disabled: a disabled submitter would drop its name/value
// from the form data, and the server needs to know which button was pressed.)
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches || !form.matches(".reply-form")) {
    return;
  }
  if (form.dataset.sending === "yes") {
    event.preventDefault();
    return;
  }
  form.dataset.sending = "yes";
  form.classList.add("is-sending");
});

// The live queue (/doctor/ queue page): new questions appear without a reload and are
// marked "New", and every row's time left counts down each second, its state (on track,
// at risk, breached) changing in words as well as colour. Plain polling of a small JSON
// view (the production proxy buffers responses, so no server-sent events): paused while
// the tab is hidden, slower after errors, and a 304 when nothing changed.
// The admin loads this file in <head>: it starts once the page is parsed.
function startLiveQueue() {
  "use strict";

  var live = document.querySelector(".queue-live[data-live-url]");
  if (!live) {
    return;
  }
  var FILTERS = ["show", "claim", "sla", "specialty"];
  var LABELS = { on_track: "On track", at_risk: "At risk", breached: "Breached" };
  var MAX_WAIT = 300;
  var seconds = Math.max(1, parseInt(live.getAttribute("data-poll-seconds"), 10) || 15);
  var status = live.querySelector("[data-live-status]");
  var announcer = live.querySelector("[data-live-announce]");
  var etag = null;
  var timer = null;
  var failures = 0;
  var stopped = false;
  // Server time minus this computer's time: a clock set wrong must not move the deadlines.
  var skew = 0;

  function syncClock(serverIso) {
    var server = Date.parse(serverIso || "");
    if (!isNaN(server)) {
      skew = server - Date.now();
    }
  }

  function setStatus(text, isError) {
    if (status) {
      status.textContent = text;
      status.classList.toggle("is-error", Boolean(isError));
    }
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  }

  // --- The countdown --------------------------------------------------------------

  function pad(number) {
    return number < 10 ? "0" + number : String(number);
  }

  // As the server words it ("2 h 05 min left", "overdue by 12 min"), with seconds in the last hour.
  function describe(milliseconds) {
    var total = Math.floor(Math.abs(milliseconds) / 1000);
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var amount = hours ? hours + " h " + pad(minutes) + " min" : minutes + " min " + pad(total % 60) + " s";
    return milliseconds >= 0 ? amount + " left" : "overdue by " + amount;
  }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll(".sla-live[data-due-at]").forEach(function (cell) {
      var due = Date.parse(cell.getAttribute("data-due-at"));
      var warn = Date.parse(cell.getAttribute("data-warn-at"));
      var state = now > due ? "breached" : now >= warn ? "at_risk" : "on_track";
      var badge = cell.querySelector(".sla-badge");
      var detail = cell.querySelector(".sla-detail");
      if (badge && !badge.classList.contains("sla-" + state)) {
        badge.className = "sla-badge sla-" + state;
        badge.textContent = LABELS[state];
      }
      if (detail) {
        detail.textContent = describe(due - now);
      }
    });
  }

  // --- New rows ---------------------------------------------------------------------

  function pollUrl() {
    // The page's own filters; a search or another page of results is not what the poll returns.
    var url = new URL(live.getAttribute("data-live-url"), window.location.href);
    var other = false;
    new URLSearchParams(window.location.search).forEach(function (value, key) {
      if (FILTERS.indexOf(key) >= 0) {
        url.searchParams.append(key, value);
      } else {
        other = true;
      }
    });
    return other ? null : url.toString();
  }

  function tbody() {
    var table = document.getElementById("result_list");
    return table ? table.tBodies[0] : null;
  }

  function rowInfo(tr) {
    var cell = tr.querySelector(".sla-live[data-question]");
    return cell ? { id: cell.getAttribute("data-question"), sig: cell.getAttribute("data-sig") } : null;
  }

  function build(html) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    return holder.firstElementChild;
  }

  function markNew(tr) {
    tr.classList.add("is-new");
    var title = tr.querySelector(".field-title_column");
    if (title && !title.querySelector(".tag-new")) {
      var tag = document.createElement("span");
      tag.className = "tag tag-new";
      tag.textContent = "New";
      title.insertBefore(document.createTextNode(" "), title.firstChild);
      title.insertBefore(tag, title.firstChild);
    }
  }

  function plural(count, word) {
    return word + (count === 1 ? "" : "s");
  }

  // The header's figures, worded as the page words them (doctor_admin/queue.html).
  function applyCounts(counts) {
    if (!counts) {
      return;
    }
    document.querySelectorAll("[data-count]").forEach(function (number) {
      var value = counts[number.getAttribute("data-count")];
      if (typeof value === "number") {
        number.textContent = String(value);
      }
    });
    var lead = document.querySelector("[data-live-lead]");
    if (!lead) {
      return;
    }
    if (!counts.total) {
      lead.textContent = "No questions waiting right now.";
      return;
    }
    var parts = [[counts.total, plural(counts.total, "question") + " waiting"]];
    if (counts.urgent) {
      parts.push([counts.urgent, "urgent"]);
    }
    if (counts.follow_ups) {
      parts.push([counts.follow_ups, plural(counts.follow_ups, "follow-up")]);
    }
    lead.textContent = "";
    parts.forEach(function (part, index) {
      if (index) {
        lead.appendChild(document.createTextNode(", "));
      }
      var strong = document.createElement("strong");
      strong.textContent = String(part[0]);
      lead.appendChild(strong);
      lead.appendChild(document.createTextNode(" " + part[1]));
    });
    lead.appendChild(document.createTextNode("."));
  }

  // Returns false (and changes nothing) while the doctor is using the list.
  function apply(data) {
    var body = tbody();
    if (!body) {
      return true;
    }
    var active = document.activeElement;
    if (active && active !== document.body && body.contains(active)) {
      return false;
    }
    var existing = {};
    Array.prototype.forEach.call(body.rows, function (tr) {
      var info = rowInfo(tr);
      if (info) {
        existing[info.id] = tr;
      }
    });
    var arrived = [];
    var wanted = data.rows.map(function (row) {
      var tr = existing[String(row.id)];
      delete existing[String(row.id)];
      if (!tr) {
        tr = build(row.html);
        markNew(tr);
        arrived.push(row);
      } else if (rowInfo(tr).sig !== row.sig) {
        // Claimed, released, crossed a state: the row as the server renders it now.
        var fresh = build(row.html);
        var box = tr.querySelector("input.action-select");
        var freshBox = fresh.querySelector("input.action-select");
        if (box && freshBox) {
          freshBox.checked = box.checked;
        }
        if (tr.classList.contains("is-new")) {
          markNew(fresh);
        }
        body.replaceChild(fresh, tr);
        tr = fresh;
      }
      return tr;
    });
    // Rows no longer in this view (answered, or claimed under a "unclaimed" filter) leave.
    Object.keys(existing).forEach(function (id) {
      body.removeChild(existing[id]);
    });
    var inOrder = wanted.every(function (tr, index) {
      return body.rows[index] === tr;
    });
    if (!inOrder) {
      wanted.forEach(function (tr) {
        body.appendChild(tr);
      });
    }
    if (wanted.length) {
      var empty = document.querySelector("[data-live-empty][hidden]");
      if (empty) {
        empty.hidden = false;
      }
    }
    if (arrived.length && announcer) {
      announcer.textContent =
        arrived.length === 1
          ? "A new question arrived: " + arrived[0].title + "."
          : arrived.length + " new questions arrived.";
    }
    tick();
    return true;
  }

  // --- Polling ------------------------------------------------------------------------

  function schedule(wait) {
    if (timer === null && !stopped) {
      timer = window.setTimeout(poll, wait * 1000);
    }
  }

  function poll() {
    timer = null;
    if (document.hidden || stopped) {
      return; // Resumed by the visibilitychange listener.
    }
    var headers = { Accept: "application/json", "X-Requested-With": "fetch", "X-Background-Refresh": "1" };
    if (etag) {
      headers["If-None-Match"] = etag;
    }
    var answerTag = null;
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: headers, redirect: "manual" })
      .then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
          throw new Error("signed-out");
        }
        if (response.status === 304) {
          return null;
        }
        if (!response.ok) {
          throw new Error("http-" + response.status);
        }
        answerTag = response.headers.get("ETag");
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        // A list in use is left alone: the tag is kept only once the rows are shown.
        if (data) {
          syncClock(data.generated_at);
        }
        if (data && apply(data)) {
          applyCounts(data.counts);
          etag = answerTag;
        }
        setStatus("New questions appear here by themselves (checked every " + seconds + " s, last at " + clock() + ").");
        schedule(seconds);
      })
      .catch(function (error) {
        if (error.message === "signed-out") {
          stopped = true;
          setStatus("You have been signed out, so new questions no longer appear. Reload the page to sign in.", true);
          return;
        }
        failures += 1;
        var wait = Math.min(seconds * Math.pow(2, failures), MAX_WAIT);
        setStatus("Could not check for new questions; trying again in " + wait + " s.", true);
        schedule(wait);
      });
  }

  var url = pollUrl();
  syncClock(live.getAttribute("data-server-now"));
  window.setInterval(tick, 1000);
  tick();
  if (!url || !window.fetch) {
    setStatus("New questions are not added to a search or to a later page: the time left still counts down.");
    return;
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer === null && !stopped) {
      poll();
    }
  });
  setStatus("New questions appear here by themselves (checked every " + seconds + " s).");
  schedule(seconds);
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", startLiveQueue);
} else {
  startLiveQueue();
}
