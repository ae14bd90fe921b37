// The interface's two languages: one message catalog each, the choice of language,
// and number, money and date formats for it.
//
// Every visible string of the app comes from here (index.html only names keys in
// data-i18n attributes), so a missing translation is a missing key, which
// tests/e2e/test_web_i18n.py finds. No dependencies: the tests import this module
// with plain node.

export const LANGUAGES = ['en', 'ro'];
const DEFAULT_LANGUAGE = 'en';
const STORAGE_KEY = 'tinkerbell.uiLanguage';
// Formats per language: British English keeps "€1,200" and day-month dates.
const FORMAT_LOCALES = { en: 'en-GB', ro: 'ro-RO' };

// A message is a string with {name} placeholders, or an object of plural forms
// (Intl.PluralRules categories) chosen by the `count` parameter.
export const CATALOGS = {
  en: {
    'app.title': 'Tinkerbell — marketing strategies from a brief',
    'skip': 'Skip to content',
    'brand.tag': 'brief → marketing strategy',
    'env.badge': 'local emulators',
    'uilang.label': 'Interface language',
    'uilang.en': 'English',
    'uilang.ro': 'Română',
    'auth.signing_in': 'Signing in…',
    'auth.signed_in': 'Signed in · guest {id}',
    'auth.not_configured': 'Not configured: {detail}',
    'auth.failed': 'Sign-in failed: {detail}',

    'form.heading': 'New strategy',
    'form.hint':
      'Describe your product, audience and goals. Tinkerbell asks Gemini for a structured strategy: budget, steps, channels, KPIs and a preview image.',
    'form.optional': '(optional)',
    'brief.label': 'Brief',
    'brief.counter': '{count} / {max}',
    'brief.help': 'Up to {max} characters.',
    'brief.placeholder':
      'Specialty coffee shop opening near the campus in Cluj; students and young professionals; launch in March…',
    'urls.label': 'Web pages',
    'urls.help': 'One public http(s) address per line, at most {max}.',
    'urls.placeholder': 'https://example.com/',
    'pdf.label': 'PDF document',
    'pdf.drop': 'Drag a PDF here, or',
    'pdf.choose': 'choose a file…',
    'pdf.help': 'Up to {max}. A file over {limit} is uploaded separately first, with a progress bar.',
    'pdf.chosen': 'Chosen: {name} ({size})',
    'pdf.remove': 'Remove the PDF',
    'pdf.uploading': 'Uploading the PDF: {percent}',
    'language.label': 'Strategy language',
    'language.en': 'English',
    'language.ro': 'Romanian (Română)',
    'language.de': 'German (Deutsch)',
    'language.fr': 'French (Français)',
    'language.es': 'Spanish (Español)',
    'language.it': 'Italian (Italiano)',
    'language.hu': 'Hungarian (Magyar)',
    'language.other': 'Other (BCP 47 tag)…',
    'langtag.label': 'Language tag',
    'langtag.help': 'For example pt-BR or de-AT.',
    'options.legend': 'Options',
    'options.image': 'Make a preview image',
    'options.grounding': 'Let the model search the web (grounding)',
    'submit.idle': 'Create strategy',
    'submit.sending': 'Sending…',
    'submit.uploading': 'Uploading the PDF…',

    'val.brief_empty': 'Write a brief: it must not be empty.',
    'val.brief_long': 'The brief has {count} characters; at most {max} are allowed.',
    'val.urls_many': 'At most {max} web addresses.',
    'val.url_bad': 'Line {line} is not an http(s) address.',
    'val.language': 'Give a BCP 47 tag such as en, ro or de-AT.',
    'val.pdf_big': 'The file has {size}; the limit is {max}.',
    'val.pdf_empty': 'The file is empty.',
    'val.pdf_type': 'Only a PDF file can be attached.',

    'recent.heading': 'Your recent strategies',
    'recent.empty': 'None yet.',
    'recent.failed': 'Could not load your strategies: {detail}',

    'task.heading': 'Strategy',
    'task.heading_done': 'Your strategy',
    'task.heading_draft': 'Your strategy, as it is written',
    'task.id': 'Task {id}',
    'task.sent': 'Sent',
    'task.live': 'Task {status}',
    'task.failed_heading': 'The strategy could not be made',
    'task.cancelled_heading': 'Cancelled',
    'task.cancelled_text': 'This task was cancelled before it finished.',
    'task.retryable': 'you can try again',
    'task.unknown_error': 'Something went wrong.',
    'task.not_yours': 'This task does not exist or is not yours.',
    'task.live_stopped': 'Live updates stopped: {detail}',
    'cancel': 'Cancel',
    'cancel.failed': 'Cancel failed: {detail}',
    'delete.button': 'Delete',
    'delete.confirm': 'Delete this task for good: its brief, PDF, strategy and preview? This cannot be undone.',
    'delete.failed': 'Delete failed: {detail}',
    'delete.done': 'The task was deleted.',
    'forget.button': 'Delete my data',
    'forget.confirm': 'Erase every task, upload and preview of yours, and this guest account? This cannot be undone.',
    'forget.working': 'Erasing your data…',
    'forget.done': 'Your data was erased ({tasks} tasks). You are now a new guest.',
    'forget.failed': 'Erasing your data failed: {detail}',
    'share.button': 'Share a read-only link',
    'share.link_label': 'Read-only link',
    'share.copy': 'Copy link',
    'share.copied': 'Link copied.',
    'share.copy_failed': 'Copying was refused: the link is selected, copy it by hand.',
    'share.revoke': 'Revoke',
    'share.revoked': 'The link was revoked: it no longer opens.',
    'share.until': 'Anyone with the link sees this strategy (not your brief or files) until {date}.',
    'share.failed': 'Sharing failed: {detail}',
    'shared.heading': 'A shared strategy',
    'shared.note': 'Read-only, shared with you; the link works until {date}.',
    'shared.gone': 'This link does not work: it may have expired or been revoked.',
    'shared.failed': 'The shared strategy could not be loaded: {detail}',
    'versions.heading': 'Versions',
    'revise.label': 'Revise this strategy: what should change?',
    'revise.placeholder': 'e.g. halve the budget and focus on TikTok',
    'revise.button': 'Revise',
    'revise.empty': 'Say what should change.',
    'revise.failed': 'The revision was not accepted: {detail}',
    'compare.a': 'Compare',
    'compare.b': 'with',
    'compare.button': 'Compare',
    'compare.caption': 'Version {a} and version {b}',
    'compare.version': 'Version {n}',
    'compare.step': 'Step {n}',
    'compare.same': 'same',
    'compare.changed': 'changed',
    'compare.added': 'added',
    'compare.removed': 'removed',
    'compare.failed': 'The versions could not be compared: {detail}',
    'status.PENDING': 'Pending',
    'status.PROCESSING': 'Processing',
    'status.COMPLETED': 'Completed',
    'status.FAILED': 'Failed',
    'status.CANCELLED': 'Cancelled',
    'stage.queued': 'Queued',
    'stage.reading_sources': 'Reading the sources',
    'stage.writing_strategy': 'Writing the strategy',
    'stage.waiting_to_retry': 'Waiting to try again',
    'stage.drawing_image': 'Drawing the preview image',
    'stage.saving': 'Saving',
    'stage.done': 'Done',
    'stage.working': 'Working',
    'stagehint.queued': 'Waiting for a worker to pick the task up.',
    'stagehint.reading_sources': 'Handing the brief, the web pages and the PDF to Gemini.',
    'stagehint.writing_strategy': 'Gemini is writing the strategy.',
    'stagehint.waiting_to_retry': 'Gemini could not answer this time; the task is tried again shortly.',
    'stagehint.drawing_image': 'Gemini is drawing the preview image.',
    'stagehint.saving': 'Saving the result.',
    'stagehint.done': '',
    'stagehint.working': '',

    'net.unreachable': 'Could not reach Tinkerbell ({detail}). Try again.',
    'net.status': 'The service answered {status}.',
    'upload.failed': 'The PDF upload failed ({detail}). Try again.',

    'strategy.draft_note': 'Still being written: more appears as Gemini writes.',
    'strategy.preview': 'Preview image',
    'strategy.preview_alt': 'Preview image for “{name}”',
    'strategy.no_image': 'No preview image: {detail}',
    'strategy.model': 'Made by {model}',
    'strategy.tokens': { one: '{count} token', other: '{count} tokens' },
    'strategy.cost': 'cost {amount}',
    'facts.budget': 'Budget',
    'facts.timeline': 'Timeline',
    'facts.audience': 'Audience',
    'facts.none': '—',
    'weeks': { one: '{count} week', other: '{count} weeks' },
    'section.channels': 'Budget by channel',
    'section.steps': 'Steps',
    'section.kpis': 'KPIs',
    'section.messages': 'Key messages',
    'section.sources': 'Sources',
    'sources.search_note': 'Links from Google Search go through Google and expire after a while.',
    'sources.search_result': 'Google Search result',
    'source_status.retrieved': 'read',
    'source_status.error': 'could not be read',
    'source_status.paywall': 'behind a paywall',
    'source_status.unsafe': 'refused as unsafe',
    'source_status.unknown': 'status unknown',
    'source_status.cited': 'cited',
    'suggestions.heading': 'Google Search suggestions',

    'chart.channel': 'Channel',
    'chart.share': 'Share',
    'chart.amount': 'Amount',
    'chart.unallocated': 'Unallocated',
    'chart.label': 'Budget split by channel: {items}.',
    'chart.item': '{name} {share} ({amount})',
    'chart.caption': 'Amounts are each channel’s share of the {budget} budget.',
    'chart.over': 'The shares add up to {total}: the bar shows them scaled to the whole.',
    'timeline.label': 'Timeline over {weeks}: {items}.',
    'timeline.item': 'step {step}, {range}',
    'timeline.week': 'week {from}',
    'timeline.weeks': 'weeks {from}–{to}',
    'timeline.tag_week': 'Week {from}',
    'timeline.tag_weeks': 'Weeks {from}–{to}',
    'timeline.tick': 'W{n}',
    'timeline.spread':
      'Gemini gave no weeks per step: the steps are spread evenly, in their order, over the timeline of {weeks}.',
    'timeline.none': 'Gemini gave no timeline in weeks, so the steps are shown as a list.',
    'kpi.number': '#',
    'kpi.indicator': 'Indicator',
    'kpi.target': 'Target',
    'export.label': 'Export',
    'export.markdown': 'Download Markdown',
    'export.print': 'Print',
    'md.rationale': 'Why these channels',
    'md.footer': 'Made with Tinkerbell by {model} on {date}. Check it before you use it.',
    'md.cost': 'Cost of this strategy: {amount}.',

    'footer': 'Output is generated by a language model: check it before you use it.',

    // Error codes of the API (docs/spec.md §2.1) and of failed tasks (§4). {detail}
    // is the server's own message, which names the exact problem.
    'err.invalid_argument': '{detail}',
    'err.unauthenticated': 'Your sign-in has expired. Reload the page to sign in again.',
    'err.not_found': 'Not found.',
    'err.method_not_allowed': 'The service does not allow this request.',
    'err.failed_precondition': 'This is not possible in the current state ({detail}).',
    'err.payload_too_large': 'Too large: {detail}',
    'err.unsupported_media_type': 'The service cannot read this kind of request.',
    'err.rate_limited': 'Too many strategies at once: try again in {seconds} s.',
    'err.rate_limited_soon': 'Too many strategies at once: try again in a moment.',
    'err.internal': 'Something went wrong on our side. Try again later.',
    'err.unavailable': 'The service is unavailable for a moment. Try again.',
    'err.budget_exhausted': "Today's spending limit is reached. New strategies are possible again from {time}.",
    'err.paused': 'The service is paused by its operator: it takes no new strategies for now. Strategies already started will finish.',
    'err.content_blocked':
      'Gemini refused the brief or its own answer for safety reasons. Rephrase the brief and try again.',
    'err.answer_truncated': 'Gemini’s answer was cut off before it was complete. Try a shorter brief.',
    'err.gemini_model_not_found':
      'The configured Gemini model does not exist: the operator has to fix the settings.',
    'err.gemini_unreachable': 'Gemini did not answer in time. Try again later.',
    'err.gemini_resource_exhausted': 'Gemini’s quota is used up for now. Try again later.',
    'err.gemini_unavailable': 'Gemini is overloaded right now. Try again later.',
    'err.gemini_internal': 'Gemini had an internal error. Try again.',
    'err.gemini_cancelled': 'Gemini dropped the request under load. Try again later.',
    'err.gemini_not_found': 'Gemini could not find something the request named. Try again.',
    'err.gemini_permission_denied': 'The Gemini key may not use this model: the operator has to fix it.',
    'err.gemini_invalid_argument': 'Gemini refused the request as invalid.',
    'err.gemini_unusable_answer': 'Gemini’s answer could not be used, twice. Try again, perhaps with another brief.',
    'err.gemini_schema_mismatch': 'Gemini’s answer was not a valid strategy, twice. Try again.',
    'err.gemini_no_image': 'Gemini answered without an image.',
    'err.pdf_unreadable': 'Gemini could not read the PDF. Check the file and try again.',
    'err.pdf_processing_timeout': 'The PDF took too long to process. Try again.',
    'err.attempts_exhausted': 'Processing was interrupted too many times. Try again.',
    'err.delivery_failed': 'The task could not be handed to a worker. Try again.',
  },

  ro: {
    'app.title': 'Tinkerbell — strategii de marketing dintr-un brief',
    'skip': 'Sari la conținut',
    'brand.tag': 'brief → strategie de marketing',
    'env.badge': 'emulatoare locale',
    'uilang.label': 'Limba interfeței',
    'uilang.en': 'English',
    'uilang.ro': 'Română',
    'auth.signing_in': 'Se face autentificarea…',
    'auth.signed_in': 'Autentificat · vizitator {id}',
    'auth.not_configured': 'Neconfigurat: {detail}',
    'auth.failed': 'Autentificarea a eșuat: {detail}',

    'form.heading': 'Strategie nouă',
    'form.hint':
      'Descrie produsul, publicul și obiectivele. Tinkerbell îi cere lui Gemini o strategie structurată: buget, pași, canale, KPI și o imagine de prezentare.',
    'form.optional': '(opțional)',
    'brief.label': 'Brief',
    'brief.counter': '{count} / {max}',
    'brief.help': 'Cel mult {max} de caractere.',
    'brief.placeholder':
      'Cafenea de specialitate lângă campusul din Cluj; studenți și tineri profesioniști; lansare în martie…',
    'urls.label': 'Pagini web',
    'urls.help': 'O adresă http(s) publică pe fiecare rând, cel mult {max}.',
    'urls.placeholder': 'https://example.com/',
    'pdf.label': 'Document PDF',
    'pdf.drop': 'Trage un PDF aici sau',
    'pdf.choose': 'alege un fișier…',
    'pdf.help': 'Cel mult {max}. Un fișier de peste {limit} se încarcă întâi separat, cu o bară de progres.',
    'pdf.chosen': 'Ales: {name} ({size})',
    'pdf.remove': 'Elimină PDF-ul',
    'pdf.uploading': 'Se încarcă PDF-ul: {percent}',
    'language.label': 'Limba strategiei',
    'language.en': 'Engleză (English)',
    'language.ro': 'Română',
    'language.de': 'Germană (Deutsch)',
    'language.fr': 'Franceză (Français)',
    'language.es': 'Spaniolă (Español)',
    'language.it': 'Italiană (Italiano)',
    'language.hu': 'Maghiară (Magyar)',
    'language.other': 'Alta (etichetă BCP 47)…',
    'langtag.label': 'Eticheta limbii',
    'langtag.help': 'De exemplu pt-BR sau de-AT.',
    'options.legend': 'Opțiuni',
    'options.image': 'Creează o imagine de prezentare',
    'options.grounding': 'Permite modelului să caute pe web (grounding)',
    'submit.idle': 'Creează strategia',
    'submit.sending': 'Se trimite…',
    'submit.uploading': 'Se încarcă PDF-ul…',

    'val.brief_empty': 'Scrie un brief: nu poate fi gol.',
    'val.brief_long': 'Brieful are {count} de caractere; sunt permise cel mult {max}.',
    'val.urls_many': 'Cel mult {max} de adrese web.',
    'val.url_bad': 'Rândul {line} nu este o adresă http(s).',
    'val.language': 'Scrie o etichetă BCP 47, de exemplu en, ro sau de-AT.',
    'val.pdf_big': 'Fișierul are {size}; limita este {max}.',
    'val.pdf_empty': 'Fișierul este gol.',
    'val.pdf_type': 'Se poate atașa doar un fișier PDF.',

    'recent.heading': 'Strategiile tale recente',
    'recent.empty': 'Niciuna deocamdată.',
    'recent.failed': 'Strategiile tale nu au putut fi încărcate: {detail}',

    'task.heading': 'Strategie',
    'task.heading_done': 'Strategia ta',
    'task.heading_draft': 'Strategia ta, pe măsură ce se scrie',
    'task.id': 'Sarcina {id}',
    'task.sent': 'Trimisă',
    'task.live': 'Sarcina: {status}',
    'task.failed_heading': 'Strategia nu a putut fi creată',
    'task.cancelled_heading': 'Anulată',
    'task.cancelled_text': 'Sarcina a fost anulată înainte să se termine.',
    'task.retryable': 'poți încerca din nou',
    'task.unknown_error': 'Ceva nu a mers bine.',
    'task.not_yours': 'Sarcina nu există sau nu îți aparține.',
    'task.live_stopped': 'Actualizările în timp real s-au oprit: {detail}',
    'cancel': 'Anulează',
    'cancel.failed': 'Anularea a eșuat: {detail}',
    'delete.button': 'Șterge',
    'delete.confirm': 'Ștergi definitiv această sarcină: brief-ul, PDF-ul, strategia și previzualizarea? Nu se poate anula.',
    'delete.failed': 'Ștergerea a eșuat: {detail}',
    'delete.done': 'Sarcina a fost ștearsă.',
    'forget.button': 'Șterge datele mele',
    'forget.confirm': 'Ștergi toate sarcinile, fișierele și previzualizările tale, și acest cont de vizitator? Nu se poate anula.',
    'forget.working': 'Se șterg datele tale…',
    'forget.done': 'Datele tale au fost șterse ({tasks} sarcini). Acum ești un vizitator nou.',
    'forget.failed': 'Ștergerea datelor a eșuat: {detail}',
    'share.button': 'Partajează un link doar pentru citire',
    'share.link_label': 'Link doar pentru citire',
    'share.copy': 'Copiază linkul',
    'share.copied': 'Linkul a fost copiat.',
    'share.copy_failed': 'Copierea a fost refuzată: linkul e selectat, copiază-l manual.',
    'share.revoke': 'Revocă',
    'share.revoked': 'Linkul a fost revocat: nu se mai deschide.',
    'share.until': 'Oricine are linkul vede această strategie (nu brief-ul sau fișierele tale) până la {date}.',
    'share.failed': 'Partajarea a eșuat: {detail}',
    'shared.heading': 'O strategie partajată',
    'shared.note': 'Doar pentru citire, partajată cu tine; linkul funcționează până la {date}.',
    'shared.gone': 'Acest link nu funcționează: poate a expirat sau a fost revocat.',
    'shared.failed': 'Strategia partajată nu a putut fi încărcată: {detail}',
    'versions.heading': 'Versiuni',
    'revise.label': 'Revizuiește strategia: ce ar trebui schimbat?',
    'revise.placeholder': 'de ex. înjumătățește bugetul și pune accent pe TikTok',
    'revise.button': 'Revizuiește',
    'revise.empty': 'Spune ce ar trebui schimbat.',
    'revise.failed': 'Revizuirea nu a fost acceptată: {detail}',
    'compare.a': 'Compară',
    'compare.b': 'cu',
    'compare.button': 'Compară',
    'compare.caption': 'Versiunea {a} și versiunea {b}',
    'compare.version': 'Versiunea {n}',
    'compare.step': 'Pasul {n}',
    'compare.same': 'la fel',
    'compare.changed': 'modificat',
    'compare.added': 'adăugat',
    'compare.removed': 'eliminat',
    'compare.failed': 'Versiunile nu au putut fi comparate: {detail}',
    'status.PENDING': 'În așteptare',
    'status.PROCESSING': 'În lucru',
    'status.COMPLETED': 'Finalizată',
    'status.FAILED': 'Eșuată',
    'status.CANCELLED': 'Anulată',
    'stage.queued': 'În coadă',
    'stage.reading_sources': 'Se citesc sursele',
    'stage.writing_strategy': 'Se scrie strategia',
    'stage.waiting_to_retry': 'Se așteaptă o nouă încercare',
    'stage.drawing_image': 'Se desenează imaginea',
    'stage.saving': 'Se salvează',
    'stage.done': 'Gata',
    'stage.working': 'În lucru',
    'stagehint.queued': 'Se așteaptă ca sarcina să fie preluată.',
    'stagehint.reading_sources': 'Brieful, paginile web și PDF-ul sunt trimise lui Gemini.',
    'stagehint.writing_strategy': 'Gemini scrie strategia.',
    'stagehint.waiting_to_retry': 'Gemini nu a putut răspunde de data aceasta; sarcina se reia în curând.',
    'stagehint.drawing_image': 'Gemini desenează imaginea de prezentare.',
    'stagehint.saving': 'Se salvează rezultatul.',
    'stagehint.done': '',
    'stagehint.working': '',

    'net.unreachable': 'Tinkerbell nu poate fi contactat ({detail}). Încearcă din nou.',
    'net.status': 'Serviciul a răspuns {status}.',
    'upload.failed': 'Încărcarea PDF-ului a eșuat ({detail}). Încearcă din nou.',

    'strategy.draft_note': 'Încă se scrie: restul apare pe măsură ce Gemini scrie.',
    'strategy.preview': 'Imagine de prezentare',
    'strategy.preview_alt': 'Imagine de prezentare pentru „{name}”',
    'strategy.no_image': 'Fără imagine de prezentare: {detail}',
    'strategy.model': 'Creată de {model}',
    'strategy.tokens': { one: '{count} token', few: '{count} tokeni', other: '{count} de tokeni' },
    'strategy.cost': 'cost {amount}',
    'facts.budget': 'Buget',
    'facts.timeline': 'Durată',
    'facts.audience': 'Public țintă',
    'facts.none': '—',
    'weeks': { one: '{count} săptămână', few: '{count} săptămâni', other: '{count} de săptămâni' },
    'section.channels': 'Bugetul pe canale',
    'section.steps': 'Pași',
    'section.kpis': 'Indicatori (KPI)',
    'section.messages': 'Mesaje cheie',
    'section.sources': 'Surse',
    'sources.search_note': 'Linkurile din Google Search trec prin Google și expiră după o vreme.',
    'sources.search_result': 'Rezultat Google Search',
    'source_status.retrieved': 'citită',
    'source_status.error': 'nu a putut fi citită',
    'source_status.paywall': 'cu acces plătit',
    'source_status.unsafe': 'refuzată ca nesigură',
    'source_status.unknown': 'stare necunoscută',
    'source_status.cited': 'citată',
    'suggestions.heading': 'Sugestii Google Search',

    'chart.channel': 'Canal',
    'chart.share': 'Pondere',
    'chart.amount': 'Sumă',
    'chart.unallocated': 'Nealocat',
    'chart.label': 'Împărțirea bugetului pe canale: {items}.',
    'chart.item': '{name} {share} ({amount})',
    'chart.caption': 'Sumele sunt ponderea fiecărui canal din bugetul de {budget}.',
    'chart.over': 'Ponderile însumează {total}: bara le arată scalate la întreg.',
    'timeline.label': 'Calendar pe {weeks}: {items}.',
    'timeline.item': 'pasul {step}, {range}',
    'timeline.week': 'săptămâna {from}',
    'timeline.weeks': 'săptămânile {from}–{to}',
    'timeline.tag_week': 'Săptămâna {from}',
    'timeline.tag_weeks': 'Săptămânile {from}–{to}',
    'timeline.tick': 'S{n}',
    'timeline.spread':
      'Gemini nu a dat săptămâni pentru fiecare pas: pașii sunt repartizați uniform, în ordinea lor, pe durata de {weeks}.',
    'timeline.none': 'Gemini nu a dat o durată în săptămâni, așa că pașii apar doar ca listă.',
    'kpi.number': 'Nr.',
    'kpi.indicator': 'Indicator',
    'kpi.target': 'Țintă',
    'export.label': 'Export',
    'export.markdown': 'Descarcă Markdown',
    'export.print': 'Tipărește',
    'md.rationale': 'De ce aceste canale',
    'md.footer': 'Creată cu Tinkerbell de {model} la {date}. Verific-o înainte s-o folosești.',
    'md.cost': 'Costul acestei strategii: {amount}.',

    'footer': 'Conținutul este generat de un model de limbaj: verifică-l înainte să-l folosești.',

    'err.invalid_argument': 'Cererea nu este validă: {detail}',
    'err.unauthenticated': 'Autentificarea a expirat. Reîncarcă pagina ca să te autentifici din nou.',
    'err.not_found': 'Nu a fost găsit.',
    'err.method_not_allowed': 'Serviciul nu permite această cerere.',
    'err.failed_precondition': 'Nu se poate în starea actuală ({detail}).',
    'err.payload_too_large': 'Prea mare: {detail}',
    'err.unsupported_media_type': 'Serviciul nu poate citi acest tip de cerere.',
    'err.rate_limited': 'Prea multe strategii deodată: încearcă din nou peste {seconds} s.',
    'err.rate_limited_soon': 'Prea multe strategii deodată: încearcă din nou în câteva momente.',
    'err.internal': 'A apărut o eroare la noi. Încearcă din nou mai târziu.',
    'err.unavailable': 'Serviciul este indisponibil pentru moment. Încearcă din nou.',
    'err.budget_exhausted': 'Limita de cheltuieli pentru azi a fost atinsă. Poți crea strategii noi din nou de la {time}.',
    'err.paused': 'Serviciul este oprit temporar de operator: nu primește strategii noi acum. Strategiile începute se vor termina.',
    'err.content_blocked':
      'Gemini a refuzat brieful sau propriul răspuns din motive de siguranță. Reformulează brieful și încearcă din nou.',
    'err.answer_truncated': 'Răspunsul lui Gemini s-a întrerupt înainte de final. Încearcă un brief mai scurt.',
    'err.gemini_model_not_found': 'Modelul Gemini configurat nu există: operatorul trebuie să corecteze setările.',
    'err.gemini_unreachable': 'Gemini nu a răspuns la timp. Încearcă din nou mai târziu.',
    'err.gemini_resource_exhausted': 'Cota Gemini este epuizată deocamdată. Încearcă din nou mai târziu.',
    'err.gemini_unavailable': 'Gemini este supraîncărcat acum. Încearcă din nou mai târziu.',
    'err.gemini_internal': 'Gemini a avut o eroare internă. Încearcă din nou.',
    'err.gemini_cancelled': 'Gemini a renunțat la cerere din cauza încărcării. Încearcă din nou mai târziu.',
    'err.gemini_not_found': 'Gemini nu a găsit ceva numit în cerere. Încearcă din nou.',
    'err.gemini_permission_denied': 'Cheia Gemini nu poate folosi acest model: operatorul trebuie să corecteze.',
    'err.gemini_invalid_argument': 'Gemini a refuzat cererea ca nevalidă.',
    'err.gemini_unusable_answer':
      'Răspunsul lui Gemini nu a putut fi folosit, de două ori. Încearcă din nou, poate cu alt brief.',
    'err.gemini_schema_mismatch': 'Răspunsul lui Gemini nu a fost o strategie validă, de două ori. Încearcă din nou.',
    'err.gemini_no_image': 'Gemini a răspuns fără imagine.',
    'err.pdf_unreadable': 'Gemini nu a putut citi PDF-ul. Verifică fișierul și încearcă din nou.',
    'err.pdf_processing_timeout': 'Procesarea PDF-ului a durat prea mult. Încearcă din nou.',
    'err.attempts_exhausted': 'Procesarea a fost întreruptă de prea multe ori. Încearcă din nou.',
    'err.delivery_failed': 'Sarcina nu a putut fi predată unui procesor. Încearcă din nou.',
  },
};

let current = DEFAULT_LANGUAGE;

/** The stored choice, else the first of the browser's languages we speak, else English. */
export function pickLanguage(stored, browserLanguages = []) {
  if (LANGUAGES.includes(stored)) return stored;
  for (const tag of browserLanguages) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return DEFAULT_LANGUAGE;
}

export function storedLanguage() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage blocked (private mode, policies): the browser's language decides
  }
}

export function rememberLanguage(language) {
  try {
    localStorage.setItem(STORAGE_KEY, language);
  } catch {
    // Not remembered; the switch still works for this page.
  }
}

export function setLanguage(language) {
  current = LANGUAGES.includes(language) ? language : DEFAULT_LANGUAGE;
  document.documentElement.lang = current;
}

export function language() {
  return current;
}

export function hasMessage(key) {
  return key in CATALOGS[current] || key in CATALOGS[DEFAULT_LANGUAGE];
}

/** The message `key` in the interface language with its {placeholders} filled. */
export function t(key, params = {}) {
  let message = CATALOGS[current][key] ?? CATALOGS[DEFAULT_LANGUAGE][key] ?? key;
  if (typeof message === 'object') {
    const form = new Intl.PluralRules(FORMAT_LOCALES[current]).select(Number(params.count) || 0);
    message = message[form] ?? message.other;
  }
  return message.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in params)) return whole;
    const value = params[name];
    return typeof value === 'number' ? formatNumber(value) : String(value);
  });
}

/** Fill every element carrying data-i18n (text) or data-i18n-<attribute> (attributes). */
export function translatePage(root = document) {
  document.title = t('app.title');
  for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const attribute of ['placeholder', 'aria-label', 'title']) {
    const data = `data-i18n-${attribute}`;
    for (const node of root.querySelectorAll(`[${data}]`)) {
      node.setAttribute(attribute, t(node.getAttribute(data)));
    }
  }
}

// ---------------------------------------------------------------- formats

function formatLocale() {
  return FORMAT_LOCALES[current];
}

export function formatNumber(value, options = {}) {
  return new Intl.NumberFormat(formatLocale(), options).format(value);
}

/** Whole euros: budgets are estimates, cents would only be noise. */
export function formatEur(value) {
  return formatNumber(value, { style: 'currency', currency: 'EUR', maximumFractionDigits: 0 });
}

/** A share of 0..1 as a percent, with one decimal when it is not whole (12.5 %). */
export function formatPercent(share) {
  return formatNumber(share, { style: 'percent', maximumFractionDigits: 1 });
}

export function formatDate(date) {
  return new Intl.DateTimeFormat(formatLocale(), { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

export function formatBytes(bytes) {
  const mib = bytes / (1024 * 1024);
  if (mib >= 1) return `${formatNumber(mib, { maximumFractionDigits: 1 })} MiB`;
  return `${formatNumber(Math.max(1, Math.round(bytes / 1024)))} KiB`;
}

export function formatWeeks(count) {
  return t('weeks', { count });
}

/** What a task cost (result.cost), to the tenth of a cent: most cost a few cents. */
export function formatCost(cost) {
  return formatNumber(Number(cost.amount) || 0, {
    style: 'currency',
    currency: cost.currency || 'EUR',
    minimumFractionDigits: 2,
    maximumFractionDigits: 4,
  });
}
