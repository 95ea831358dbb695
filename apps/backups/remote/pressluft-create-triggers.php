<?php
/**
 * Runs a list of SQL statements exactly as given, one by one, over one
 * connection with the account named in the request: run as the site's Linux
 * user with the site's database account (env_restore.py, when a restore
 * carries triggers across databases).
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
 * Answer (one JSON line): {"ok": true, "done": N} or
 *   {"ok": false, "done": N, "error": "..."} (N statements succeeded).
 */

function pl_answer(array $answer): void {
    echo json_encode($answer, JSON_INVALID_UTF8_SUBSTITUTE), "\n";
    exit($answer['ok'] ? 0 : 1);
}

$request = json_decode((string) stream_get_contents(STDIN), true);
if (!is_array($request) || !is_array($request['db'] ?? null) || !is_array($request['statements'] ?? null)) {
    pl_answer(['ok' => false, 'done' => 0, 'error' => 'bad request']);
}
$statements = [];
foreach ($request['statements'] as $hex) {
    if (!is_string($hex) || !preg_match('/^(?:[0-9a-f]{2})+$/', $hex)) {
        pl_answer(['ok' => false, 'done' => 0, 'error' => 'bad request: statements are hex']);
    }
    $statements[] = hex2bin($hex);
}

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
try {
    $db = new mysqli('localhost', (string) $request['db']['user'], (string) $request['db']['password'],
                     (string) $request['db']['name']);
    $db->set_charset('utf8mb4');
} catch (mysqli_sql_exception $e) {
    pl_answer(['ok' => false, 'done' => 0, 'error' => 'cannot connect to the database: ' . $e->getMessage()]);
}
$done = 0;
foreach ($statements as $statement) {
    try {
        $db->real_query($statement);
        $result = $db->store_result();
        if ($result instanceof mysqli_result) {
            $result->free();
        }
    } catch (mysqli_sql_exception $e) {
        pl_answer(['ok' => false, 'done' => $done, 'error' => $e->getMessage()]);
    }
    $done++;
}
pl_answer(['ok' => true, 'done' => $done]);
