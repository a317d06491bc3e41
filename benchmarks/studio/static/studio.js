// raggym studio: every piece of episode text is written with textContent, never as HTML.
(function () {
  'use strict';

  var state = { config: {}, files: [], episodes: [], current: null, judged: [] };

  function $(id) { return document.getElementById(id); }
  function node(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) { el.className = cls; }
    if (text !== undefined && text !== null) { el.textContent = String(text); }
    return el;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      if (arguments[i]) { parent.appendChild(arguments[i]); }
    }
    return parent;
  }
  function say(text, error) {
    var el = $('status');
    el.textContent = text || '';
    el.className = error ? 'error' : '';
  }
  function annotator() { return $('annotator').value.trim(); }

  function api(path, body) {
    var options = { headers: {} };
    if (body !== undefined) {
      options.method = 'POST';
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.error || ('HTTP ' + response.status)); }
        return data;
      });
    });
  }
  function fail(error) { say(String(error.message || error), true); }

  // ---- tabs ------------------------------------------------------------------------------
  function show(view) {
    var buttons = document.querySelectorAll('#tabs button');
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].classList.toggle('active', buttons[i].getAttribute('data-view') === view);
    }
    var views = document.querySelectorAll('.view');
    for (var j = 0; j < views.length; j++) { views[j].hidden = views[j].id !== 'view-' + view; }
    if (view === 'agree') { loadAgreement(); }
  }
  document.querySelectorAll('#tabs button').forEach(function (button) {
    button.addEventListener('click', function () { show(button.getAttribute('data-view')); });
  });

  // ---- annotator -------------------------------------------------------------------------
  try { $('annotator').value = window.localStorage.getItem('raggym-studio-annotator') || ''; }
  catch (e) { /* storage off: the name is typed each session */ }
  $('annotator').addEventListener('change', function () {
    try { window.localStorage.setItem('raggym-studio-annotator', annotator()); } catch (e) {}
    if (state.current) { renderEpisode(); }
  });

  // ---- browse ----------------------------------------------------------------------------
  function loadFiles(selectFile) {
    return api('/api/files').then(function (files) {
      state.files = files;
      var select = $('filter-file');
      select.textContent = '';
      files.forEach(function (f) {
        var label = f.name + ' (' + f.episodes + ')' + (f.skipped ? ' — ' + f.skipped : '');
        var option = node('option', null, label);
        option.value = String(f.index);
        select.appendChild(option);
      });
      if (selectFile !== undefined) { select.value = String(selectFile); }
      return loadEpisodes();
    });
  }

  function loadEpisodes() {
    var file = $('filter-file').value;
    if (file === '') { state.episodes = []; renderList(); return Promise.resolve(); }
    return api('/api/files/' + file + '/episodes').then(function (episodes) {
      state.episodes = episodes;
      var agents = {};
      episodes.forEach(function (e) { if (e.agent) { agents[e.agent] = true; } });
      var select = $('filter-agent');
      var keep = select.value;
      select.textContent = '';
      add(select, node('option', null, 'all'));
      select.options[0].value = '';
      Object.keys(agents).sort().forEach(function (a) {
        var option = node('option', null, a);
        option.value = a;
        select.appendChild(option);
      });
      select.value = agents[keep] ? keep : '';
      renderList();
    });
  }

  function renderList() {
    var agent = $('filter-agent').value, status = $('filter-status').value;
    var sampled = $('filter-sampled').value, words = $('filter-search').value.toLowerCase();
    var list = $('episode-list');
    list.textContent = '';
    var hits = state.episodes.filter(function (e) {
      return (!agent || e.agent === agent) && (!status || e.status === status) &&
        (!sampled || e.sampled > 0) &&
        (!words || (e.question + ' ' + e.example_id).toLowerCase().indexOf(words) >= 0);
    });
    hits.forEach(function (e) {
      var li = node('li', 'episode');
      li.setAttribute('data-n', String(e.n));
      if (state.current && state.current.file === e.file && state.current.n === e.n) {
        li.classList.add('current');
      }
      add(li, node('span', 'badge ' + e.status, e.status), node('strong', null, e.example_id),
        node('span', 'muted', ' ' + (e.agent || '') + ' · ' + e.steps + ' steps' +
          (e.sampled ? ' · ' + e.sampled + ' sampled' : '')),
        node('div', 'question', e.question));
      li.addEventListener('click', function () { openEpisode(e.file, e.n); });
      list.appendChild(li);
    });
    $('episode-count').textContent = hits.length + ' of ' + state.episodes.length + ' episodes';
  }
  ['filter-agent', 'filter-status', 'filter-sampled'].forEach(function (id) {
    $(id).addEventListener('change', renderList);
  });
  $('filter-search').addEventListener('input', renderList);
  $('filter-file').addEventListener('change', function () { loadEpisodes().catch(fail); });

  function openEpisode(file, n) {
    return api('/api/files/' + file + '/episodes/' + n).then(function (data) {
      state.current = { file: file, n: n, key: data.key, record: data.record, texts: data.texts };
      return loadJudgements();
    }).then(function () { renderEpisode(); renderList(); });
  }

  function loadJudgements() {
    return api('/api/annotations?episode=' + encodeURIComponent(state.current.key))
      .then(function (items) { state.judged = items; });
  }

  function mine(step, kind, candidate) {
    var name = annotator();
    var found = null;
    state.judged.forEach(function (a) {
      if (a.annotator === name && a.step === step && a.kind === kind &&
          (kind === 'rank' || a.candidate === candidate)) { found = a; }
    });
    return found;
  }

  function describe(a, step) {
    if (a.kind === 'rank') {
      return a.annotator + ': ranked ' + a.order.map(function (i) { return '#' + (i + 1); })
        .join(' > ') + (a.note ? ' — ' + a.note : '');
    }
    var what = a.candidate === null ? 'the action' : 'candidate #' + (a.candidate + 1);
    return a.annotator + ': ' + what + ' ' + a.label + (a.note ? ' — ' + a.note : '');
  }

  function post(body) {
    if (!annotator()) { say('Type your name in the Annotator box first.', true); return; }
    body.annotator = annotator();
    body.file = state.current.file;
    body.episode = state.current.n;
    api('/api/annotations', body).then(function (made) {
      return loadJudgements().then(function () {
        renderEpisode();
        say('Saved: ' + describe(made));
      });
    }).catch(fail);
  }

  function actionText(action) {
    if (!action) { return '(unparsed)'; }
    return action.type + ': ' + (action.text === undefined ? '' : action.text);
  }

  function renderEpisode() {
    var cur = state.current, rec = cur.record, pane = $('episode-pane');
    pane.textContent = '';
    var gold = rec.gold || {};
    var goldTitles = {}, goldIds = {};
    (gold.evidence_titles || []).forEach(function (t) { goldTitles[t] = true; });
    (gold.evidence_doc_ids || []).forEach(function (t) { goldIds[t] = true; });
    add(pane, node('h2', 'question', rec.question));
    var meta = node('div', 'muted', rec.example_id + ' · ' + rec.env_id +
      (rec.extra && rec.extra.agent ? ' · ' + rec.extra.agent : ''));
    add(pane, meta);
    if (rec.options) {
      var opts = node('ul', 'options');
      Object.keys(rec.options).forEach(function (k) { add(opts, node('li', null, k + ') ' + rec.options[k])); });
      add(pane, opts);
    }
    var facts = node('table', 'facts');
    function fact(name, value) {
      var tr = node('tr');
      add(tr, node('th', null, name), node('td', null, value));
      facts.appendChild(tr);
    }
    fact('Answer', rec.final_answer === null ? '(none)' : rec.final_answer);
    fact('Gold', (gold.answers || []).join(' / ') || '(none)');
    fact('Gold evidence', (gold.evidence_titles || []).join('; ') || '(none)');
    fact('Metrics', Object.keys(rec.metrics || {}).map(function (k) {
      return k + '=' + (rec.metrics[k] === null ? '-' : rec.metrics[k]);
    }).join('  ') || '-');
    if (rec.error) { fact('Error', rec.error); }
    add(pane, facts);
    rec.steps.forEach(function (step) { pane.appendChild(renderStep(step, goldTitles, goldIds)); });
    pane.setAttribute('data-episode', cur.file + '/' + cur.n);
  }

  function renderStep(step, goldTitles, goldIds) {
    var box = node('section', 'step');
    box.setAttribute('data-step', String(step.index));
    add(box, node('h3', null, 'Step ' + (step.index + 1) + ' — ' + actionText(step.action)));
    if (step.raw_text !== null && step.raw_text !== undefined) {
      add(box, node('div', 'muted', 'Model text'), node('pre', 'raw', step.raw_text));
    }
    if (step.action_error) { add(box, node('div', 'badge bad', step.action_error)); }
    if (step.retrieved && step.retrieved.length) {
      var docs = node('ol', 'docs');
      step.retrieved.forEach(function (doc) {
        var li = node('li', 'doc');
        if (goldTitles[doc.title] || goldIds[doc.id]) { add(li, node('span', 'badge gold', 'gold')); }
        add(li, node('strong', 'title', doc.title || doc.id),
          node('span', 'muted', ' ' + doc.id + ' · ' + Number(doc.score).toFixed(3)));
        var text = Object.prototype.hasOwnProperty.call(state.current.texts, doc.id)
          ? state.current.texts[doc.id] : null;
        if (text !== null) {
          var details = node('details');
          add(details, node('summary', null, 'text'), node('div', 'doc-text', text));
          add(li, details);
        }
        docs.appendChild(li);
      });
      add(box, node('div', 'muted', 'Retrieved'), docs);
    }
    if (step.candidates && step.candidates.length >= 2) {
      add(box, renderRanking(step));
    } else {
      add(box, renderMark(step));
    }
    var others = state.judged.filter(function (a) { return a.step === step.index; });
    if (others.length) {
      var list = node('div', 'judgements');
      others.forEach(function (a) { add(list, node('div', 'judgement', describe(a, step))); });
      add(box, list);
    }
    return box;
  }

  function markButtons(step, candidate) {
    var current = mine(step.index, 'mark', candidate);
    var wrap = node('span', 'controls');
    ['good', 'bad'].forEach(function (label) {
      var b = node('button', 'mark-' + label, label);
      b.type = 'button';
      if (current && current.label === label) { b.classList.add('on-' + label); }
      b.addEventListener('click', function () {
        var body = { step: step.index, kind: 'mark', candidate: candidate, label: label };
        if (candidate === null) {
          var note = document.querySelector('.step[data-step="' + step.index + '"] .note');
          if (note && note.value.trim()) { body.note = note.value.trim(); }
        }
        post(body);
      });
      wrap.appendChild(b);
    });
    return wrap;
  }

  function renderMark(step) {
    var wrap = node('div', 'mark');
    var current = mine(step.index, 'mark', null);
    add(wrap, node('span', 'muted', 'This action is '), markButtons(step, null));
    var note = node('input', 'note');
    note.type = 'text';
    note.maxLength = 4000;
    note.placeholder = 'optional note';
    if (current && current.note) { note.value = current.note; }
    add(wrap, note);
    return wrap;
  }

  function renderRanking(step) {
    var wrap = node('div', 'ranking');
    var chosen = step.extra ? step.extra.chosen : null;
    var saved = mine(step.index, 'rank', null);
    var order = step.candidates.map(function (c, i) { return i; });
    if (saved) {
      order = saved.order.slice();
    } else {
      order.sort(function (a, b) {
        var sa = step.candidates[a].score, sb = step.candidates[b].score;
        sa = sa === null ? -Infinity : sa; sb = sb === null ? -Infinity : sb;
        return sb - sa || a - b;
      });
    }
    add(wrap, node('div', 'muted', saved ? 'Your ranking (saved), best first — drag, use ▲▼, ' +
      'or focus a candidate and press ↑/↓' : 'Rank the candidates, best first (shown in the ' +
      'scorer\'s order) — drag, use ▲▼, or focus a candidate and press ↑/↓; g/b marks it'));
    var list = node('ol', 'candidates');
    var dragged = null;
    function renumber() {
      Array.prototype.forEach.call(list.children, function (li, pos) {
        li.querySelector('.pos').textContent = String(pos + 1);
      });
    }
    order.forEach(function (index) {
      var c = step.candidates[index];
      var li = node('li', 'candidate');
      li.tabIndex = 0;
      li.draggable = true;
      li.setAttribute('data-index', String(index));
      var body = node('div', 'body');
      add(body, node('div', null, '#' + (index + 1) + ' ' + actionText(c.action)),
        node('pre', 'raw', c.text),
        node('div', 'muted', (c.scorer || 'scorer') + ': ' +
          (c.score === null ? '—' : Number(c.score).toFixed(3)) +
          (index === chosen ? ' · followed' : '') + (c.error ? ' · ' + c.error : '')));
      var up = node('button', 'move-up', '▲'), down = node('button', 'move-down', '▼');
      up.type = down.type = 'button';
      up.title = 'move up'; down.title = 'move down';
      function move(delta) {
        if (delta < 0 && li.previousElementSibling) { list.insertBefore(li, li.previousElementSibling); }
        if (delta > 0 && li.nextElementSibling) { list.insertBefore(li.nextElementSibling, li); }
        renumber();
      }
      up.addEventListener('click', function () { move(-1); });
      down.addEventListener('click', function () { move(1); });
      li.addEventListener('keydown', function (event) {
        if (event.target !== li) { return; }
        if (event.key === 'ArrowUp') { move(-1); li.focus(); event.preventDefault(); }
        if (event.key === 'ArrowDown') { move(1); li.focus(); event.preventDefault(); }
        if (event.key === 'g' || event.key === 'b') {
          li.querySelector('.mark-' + (event.key === 'g' ? 'good' : 'bad')).click();
        }
      });
      li.addEventListener('dragstart', function () { dragged = li; li.classList.add('dragging'); });
      li.addEventListener('dragend', function () { li.classList.remove('dragging'); dragged = null; renumber(); });
      li.addEventListener('dragover', function (event) {
        event.preventDefault();
        if (!dragged || dragged === li) { return; }
        var box = li.getBoundingClientRect();
        var after = event.clientY > box.top + box.height / 2;
        list.insertBefore(dragged, after ? li.nextSibling : li);
      });
      add(li, node('span', 'pos', ''), body,
        add(node('span', 'controls'), up, down, markButtons(step, index)));
      list.appendChild(li);
    });
    renumber();
    var note = node('input', 'note');
    note.type = 'text'; note.maxLength = 4000; note.placeholder = 'optional note';
    if (saved && saved.note) { note.value = saved.note; }
    var save = node('button', 'save-rank', 'Save ranking');
    save.type = 'button';
    save.addEventListener('click', function () {
      var made = Array.prototype.map.call(list.children, function (li) {
        return Number(li.getAttribute('data-index'));
      });
      var body = { step: step.index, kind: 'rank', order: made };
      if (note.value.trim()) { body.note = note.value.trim(); }
      post(body);
    });
    add(wrap, list, add(node('div', 'controls'), save, note));
    return wrap;
  }

  // ---- agreement -------------------------------------------------------------------------
  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }
  function fmt(x) { return x === null || x === undefined ? '—' : Number(x).toFixed(3); }
  function loadAgreement() {
    api('/api/agreement').then(function (report) {
      var out = $('agree-out');
      out.textContent = '';
      var names = Object.keys(report.annotators);
      add(out, node('p', null, names.length ? 'Annotators: ' + names.map(function (n) {
        var c = report.annotators[n];
        return n + ' (' + plural(c.rankings, 'ranking') + ', ' + plural(c.marks, 'mark') + ')';
      }).join(', ') : 'No annotations yet.'));
      [['Between annotators', report.between_people, true],
       ['Annotators and recorded scorers', report.with_scorers, false]].forEach(function (part) {
        add(out, node('h3', null, part[0]));
        var table = node('table', 'agreement');
        table.id = part[2] ? 'agree-people' : 'agree-scorers';
        var head = node('tr');
        var cols = ['A', 'B', 'ranking accuracy', 'pairs', 'steps'];
        if (part[2]) { cols = cols.concat(['kappa', 'observed', 'marks']); }
        cols.forEach(function (c) { head.appendChild(node('th', null, c)); });
        table.appendChild(head);
        part[1].forEach(function (row) {
          var tr = node('tr');
          var cells = [row.a, row.b, fmt(row.accuracy), row.pairs, row.steps];
          if (part[2]) { cells = cells.concat([fmt(row.kappa), fmt(row.observed), row.items]); }
          cells.forEach(function (v) { tr.appendChild(node('td', null, v)); });
          table.appendChild(tr);
        });
        if (!part[1].length) { add(out, node('p', 'muted', 'Nothing judged in common yet.')); }
        else { add(out, table); }
      });
    }).catch(fail);
  }
  $('agree-refresh').addEventListener('click', loadAgreement);

  // ---- export ----------------------------------------------------------------------------
  $('export-format').addEventListener('change', function () {
    $('export-download').href = '/api/export?format=' + $('export-format').value + '&download=1';
  });
  $('export-run').addEventListener('click', function () {
    api('/api/export?format=' + $('export-format').value).then(function (data) {
      $('export-count').textContent = data.count + ' ' + data.format + ' rows';
      $('export-out').textContent = data.rows.slice(0, 20).map(function (r) {
        return JSON.stringify(r, null, 1);
      }).join('\n\n');
    }).catch(fail);
  });

  // ---- ask -------------------------------------------------------------------------------
  var askJob = null;
  function fillSelect(id, values) {
    var select = $(id);
    select.textContent = '';
    values.forEach(function (v) { var o = node('option', null, v); o.value = v; select.appendChild(o); });
  }
  $('ask-run').addEventListener('click', function () {
    var body = { question: $('ask-question').value, answer: $('ask-answer').value,
      task: $('ask-task').value, agent: $('ask-agent').value, llm: $('ask-llm').value };
    $('ask-steps').textContent = '';
    $('ask-final').textContent = '';
    $('ask-save').hidden = true;
    api('/api/ask', body).then(function (data) {
      askJob = data.job;
      $('ask-state').textContent = 'thinking…';
      var source = new EventSource('/api/ask/' + data.job + '/events');
      source.addEventListener('step', function (event) {
        var step = JSON.parse(event.data);
        var li = node('li', 'ask-step');
        add(li, node('strong', null, actionText(step.action)));
        if (step.retrieved.length) {
          add(li, node('div', 'muted', '→ ' + step.retrieved.map(function (d) { return d.title || d.id; }).join('; ')));
        }
        if (step.raw_text) { add(li, node('pre', 'raw', step.raw_text)); }
        $('ask-steps').appendChild(li);
        $('ask-state').textContent = (step.index + 1) + ' steps…';
      });
      source.addEventListener('episode', function (event) {
        var rec = JSON.parse(event.data);
        $('ask-state').textContent = 'done in ' + rec.steps.length + ' steps';
        $('ask-final').textContent = rec.error ? 'Failed: ' + rec.error
          : 'Answer: ' + (rec.final_answer === null ? '(none)' : rec.final_answer);
        $('ask-save').hidden = !state.config.save;
      });
      source.addEventListener('failed', function (event) {
        $('ask-state').textContent = 'failed: ' + JSON.parse(event.data).error;
      });
      source.addEventListener('end', function () { source.close(); });
      source.onerror = function () { source.close(); };
    }).catch(fail);
  });
  $('ask-save').addEventListener('click', function () {
    api('/api/ask/' + askJob + '/save', {}).then(function (where) {
      say('Saved; annotate it below.');
      show('browse');
      return loadFiles(where.file).then(function () { return openEpisode(where.file, where.n); });
    }).catch(fail);
  });

  // ---- start -----------------------------------------------------------------------------
  api('/api/config').then(function (config) {
    state.config = config;
    if (config.ask) {
      fillSelect('ask-task', config.ask.tasks);
      fillSelect('ask-agent', config.ask.agents);
      fillSelect('ask-llm', config.ask.llms);
    } else {
      $('ask-run').disabled = true;
      $('ask-state').textContent = 'Asking is off: start the studio with --llm and --ask-task.';
    }
    if (!config.export) {
      $('export-run').disabled = true;
      $('export-count').textContent = 'Export is off: raggym\'s trainers are not installed.';
    }
    return loadFiles();
  }).then(function () { say(''); document.body.setAttribute('data-ready', '1'); }).catch(fail);
}());
