<?php
/**
 * Runs a list of SQL statements exactly as given, one by one, over one
 * connection with the account named in the request: run as the site's Linux
 * user with the site's database account (env_restore.py, when a restore
 * carries triggers and views across databases).
 *
 * Why not the mariadb client: the client reads its input as a script. It
 * looks for delimiters, comments and its own commands in what it is given,
 * and a line of a trigger body that starts with "delimiter" loses its line
 * break on the way. Trigger bodies are the site's text; here each statement
 * reaches the server as one unit, byte for byte, and nothing in it is read
 * by anything but the server's parser.
 *
 * Request (JSON on stdin): {"db": {"name", "user", "password"},
 *   "statements": [hex of each statement, ...]}
 * Answer (one JSON line): {"ok": true, "done": N, "rows": [...]} or
 *   {"ok": false, "done": N, "error": "..."} (N statements succeeded). "rows"
 *   holds, for each statement, the rows it returned (each cell in hex, null
 *   for NULL) or null when it returned no result set.
 *
 * Or, instead of "statements", "groups": [[hex, ...], ...]: each group's
 * statements in order; a group that fails is tried again after the others,
 * round after round while a round gets one more group through (a view
 * created before the view it reads fails). Answer: {"ok": true, "done": N}
 * or {"ok": false, "done": N, "failed": [index, ...], "error": "..."} (the
 * last error of a group that never got through).
 */

function pl_answer(array $answer): void {
    echo json_encode($answer, JSON_INVALID_UTF8_SUBSTITUTE), "\n";
    exit($answer['ok'] ? 0 : 1);
}

$request = json_decode((string) stream_get_contents(STDIN), true);
if (!is_array($request) || !is_array($request['db'] ?? null)) {
    pl_answer(['ok' => false, 'done' => 0, 'error' => 'bad request']);
}
function pl_statements($list): array {
    if (!is_array($list)) {
        pl_answer(['ok' => false, 'done' => 0, 'error' => 'bad request: statements are a list']);
    }
    $statements = [];
    foreach ($list as $hex) {
        if (!is_string($hex) || !preg_match('/^(?:[0-9a-f]{2})+$/', $hex)) {
            pl_answer(['ok' => false, 'done' => 0, 'error' => 'bad request: statements are hex']);
        }
        $statements[] = hex2bin($hex);
    }
    return $statements;
}

/** Runs one statement; its rows (cells in hex) or null when it returned no result set. */
function pl_run(mysqli $db, string $statement): ?array {
    $db->real_query($statement);
    $result = $db->store_result();
    if (!($result instanceof mysqli_result)) {
        return null;
    }
    $rows = [];
    while (($row = $result->fetch_row()) !== null) {
        $rows[] = array_map(fn($cell) => $cell === null ? null : bin2hex((string) $cell), $row);
    }
    $result->free();
    return $rows;
}

$groups = null;
if (is_array($request['groups'] ?? null)) {
    $groups = array_map('pl_statements', $request['groups']);
} elseif (!is_array($request['statements'] ?? null)) {
    pl_answer(['ok' => false, 'done' => 0, 'error' => 'bad request']);
} else {
    $statements = pl_statements($request['statements']);
}

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
try {
    $db = new mysqli('localhost', (string) $request['db']['user'], (string) $request['db']['password'],
                     (string) $request['db']['name']);
    $db->set_charset('utf8mb4');
} catch (mysqli_sql_exception $e) {
    pl_answer(['ok' => false, 'done' => 0, 'error' => 'cannot connect to the database: ' . $e->getMessage()]);
}
if ($groups !== null) {
    $pending = array_keys($groups);
    $error = '';
    do {
        $left = [];
        foreach ($pending as $index) {
            try {
                foreach ($groups[$index] as $statement) {
                    pl_run($db, $statement);
                }
            } catch (mysqli_sql_exception $e) {
                $left[] = $index;
                $error = $e->getMessage();
            }
        }
        $progress = count($left) < count($pending);
        $pending = $left;
    } while ($pending && $progress);
    $done = count($groups) - count($pending);
    if ($pending) {
        pl_answer(['ok' => false, 'done' => $done, 'failed' => $pending, 'error' => $error]);
    }
    pl_answer(['ok' => true, 'done' => $done]);
}
$done = 0;
$rows = [];
foreach ($statements as $statement) {
    try {
        $rows[] = pl_run($db, $statement);
    } catch (mysqli_sql_exception $e) {
        pl_answer(['ok' => false, 'done' => $done, 'error' => $e->getMessage()]);
    }
    $done++;
}
pl_answer(['ok' => true, 'done' => $done, 'rows' => $rows]);
