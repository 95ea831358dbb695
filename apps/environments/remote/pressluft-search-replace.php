<?php
/**
 * Pressluft's serialized-safe search-replace, run on the node:
 *
 *     php pressluft-search-replace.php < request.json
 *
 * Request: {"db": {"host", "name", "user", "password", "port"?, "socket"?},
 *           "prefix": "wp_", "replacements": [["http://old", "https://new"], ...],
 *           "dry_run": false, "batch_size"?: 500}
 * Answer (one JSON line): {"ok": true, "tables": N, "rows_changed": N,
 *   "cells_changed": N, "remaining": {"<old>": count}, "found": {"<old>": count},
 *   "skipped_tables": [...], "skipped_cells": N, "errors": [...]}
 * or {"ok": false, "error": "..."} with exit code 1.
 *
 * PHP-serialized values are decoded and re-encoded with PHP's own
 * unserialize()/serialize(), so string lengths are always right. Every form of
 * an old value is replaced: as is, JSON-escaped, URL-encoded (either hex case)
 * and, for URLs, protocol-relative (//host...). A new value that contains its
 * old value (http://a -> http://a/blog) is left alone where it already
 * appears, which keeps a second run from changing anything.
 */

error_reporting(E_ALL & ~E_DEPRECATED & ~E_NOTICE & ~E_WARNING);
ini_set('display_errors', 'stderr');

const PL_MAX_DEPTH = 512;

function pl_answer(array $data, int $exit = 0): void {
    fwrite(STDOUT, json_encode($data, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
    exit($exit);
}

function pl_fail(string $message): void {
    pl_answer(['ok' => false, 'error' => $message], 1);
}

/** A cell that cannot be rewritten without risking its data: it is left as it is. */
final class PlSkipCell extends Exception {}

/**
 * One compiled set of replacements. All forms of all pairs live in a single
 * alternation so a string is rewritten in one left-to-right pass: earlier
 * output is never rescanned, and the longest form wins where several start at
 * the same place.
 */
final class PlReplacer {
    private string $regex;
    /** mark => replacement text (null for guards, which are kept as they are) */
    private array $replacement = [];
    /** mark => index of the pair it belongs to */
    private array $pairOf = [];
    public array $olds = [];
    /**
     * One substring per pair that each of its forms contains (a row without
     * any of them holds no old form); null when some pair has none.
     */
    public ?array $needles = [];

    public function __construct(array $pairs) {
        $olds = [];
        $guards = [];
        foreach ($pairs as $i => [$old, $new]) {
            $this->olds[$i] = $old;
            foreach (self::forms($old, $new) as [$pattern, $replacement, $oldLiteral]) {
                $olds[] = [$pattern, $replacement, $i, strlen($oldLiteral)];
                $guards[$replacement] = true;
            }
            $needle = self::needle($old);
            if ($needle === null) {
                $this->needles = null;
            } elseif ($this->needles !== null) {
                $this->needles[] = $needle;
            }
        }
        usort($olds, fn($a, $b) => $b[3] <=> $a[3]);

        $alternatives = [];
        foreach ($olds as $n => [$pattern, $replacement, $pair]) {
            $mark = 'o' . $n;
            $alternatives[] = $pattern . '(*MARK:' . $mark . ')';
            $this->replacement[$mark] = $replacement;
            $this->pairOf[$mark] = $pair;
        }
        $oldOnly = '~' . implode('|', $alternatives) . '~s';

        // A new form only needs protecting when an old form occurs inside it.
        $guardAlternatives = [];
        $guardList = array_keys($guards);
        usort($guardList, fn($a, $b) => strlen($b) <=> strlen($a));
        foreach ($guardList as $n => $literal) {
            if (preg_match($oldOnly, $literal)) {
                $mark = 'g' . $n;
                $guardAlternatives[] = self::caseInsensitiveHex(preg_quote($literal, '~')) . '(*MARK:' . $mark . ')';
                $this->replacement[$mark] = null;
            }
        }
        $this->regex = '~' . implode('|', array_merge($guardAlternatives, $alternatives)) . '~s';
    }

    /** [pattern, replacement, old literal] for each form of one pair. */
    private static function forms(string $old, string $new): array {
        $variants = [[$old, $new]];
        $oldUrl = self::splitUrl($old);
        $newUrl = self::splitUrl($new);
        if ($oldUrl !== null && $newUrl !== null) {
            $variants[] = [$oldUrl[1], $newUrl[1]];
        }
        // Without this, http://old.example would also rewrite http://old.example.org.
        $boundary = ($oldUrl !== null && $oldUrl[2] === '') ? '(?![A-Za-z0-9-]|\.[A-Za-z0-9])' : '';

        $forms = [];
        foreach ($variants as [$from, $to]) {
            $encodings = [
                [$from, $to],
                [self::jsonEscape($from), self::jsonEscape($to)],
                [rawurlencode($from), rawurlencode($to)],
            ];
            $seen = [];
            foreach ($encodings as $k => [$encodedFrom, $encodedTo]) {
                if (isset($seen[$encodedFrom])) {
                    continue;
                }
                $seen[$encodedFrom] = true;
                $pattern = preg_quote($encodedFrom, '~');
                if ($k === 2) {
                    $pattern = self::caseInsensitiveHex($pattern);
                }
                $forms[] = ['(?:' . $pattern . ')' . $boundary, $encodedTo, $encodedFrom];
            }
        }
        return $forms;
    }

    /** [scheme, "//authority/rest", rest after the authority] or null when not a URL. */
    private static function splitUrl(string $value): ?array {
        if (!preg_match('~^([A-Za-z][A-Za-z0-9+.-]*):(//[^/?#\s]+)(.*)$~s', $value, $m)) {
            return null;
        }
        return [$m[1], $m[2] . $m[3], $m[3]];
    }

    private static function jsonEscape(string $value): string {
        $json = json_encode($value, JSON_INVALID_UTF8_IGNORE);
        return $json === false ? $value : substr($json, 1, -1);
    }

    private static function caseInsensitiveHex(string $quotedPattern): string {
        return preg_replace_callback('~%([0-9A-Fa-f]{2})~', fn($m) => '%(?i:' . $m[1] . ')', $quotedPattern);
    }

    /**
     * The longest run of characters that no encoding changes, so every form
     * contains it: a cheap prefilter the server applies with LIKE.
     */
    private static function needle(string $old): ?string {
        preg_match_all('~[A-Za-z0-9._-]+~', $old, $m);
        $best = '';
        foreach ($m[0] as $run) {
            if (strlen($run) > strlen($best)) {
                $best = $run;
            }
        }
        return strlen($best) >= 3 ? $best : null;
    }

    /** Occurrences of old forms per pair index. */
    public function count(string $text, array &$into): int {
        $matched = preg_match_all($this->regex, $text, $matches, PREG_SET_ORDER);
        if ($matched === false) {
            // Undercounting would report a clean database that is not.
            throw new RuntimeException('regular expression failed: ' . preg_last_error_msg());
        }
        if ($matched === 0) {
            return 0;
        }
        $total = 0;
        foreach ($matches as $m) {
            $mark = $m['MARK'] ?? '';
            if (isset($this->pairOf[$mark])) {
                $into[$this->pairOf[$mark]] = ($into[$this->pairOf[$mark]] ?? 0) + 1;
                $total++;
            }
        }
        return $total;
    }

    public function contains(string $text): bool {
        $found = [];
        return $this->count($text, $found) > 0;
    }

    public function replacePlain(string $text): string {
        $result = preg_replace_callback($this->regex, function ($m) {
            $replacement = $this->replacement[$m['MARK']] ?? null;
            return $replacement ?? $m[0];
        }, $text);
        if ($result === null) {
            throw new PlSkipCell('regular expression failed: ' . preg_last_error_msg());
        }
        return $result;
    }

    /** The rewritten value, or the very same string when it holds no old form. */
    public function rewrite(string $text, int $depth = 0): string {
        if ($depth > PL_MAX_DEPTH) {
            throw new PlSkipCell('nesting too deep');
        }
        if (!$this->contains($text)) {
            return $text;
        }
        $decoded = pl_unserialize($text);
        if ($decoded === null) {
            return $this->replacePlain($text);
        }
        [$value, $lead, $trail] = $decoded;
        $objects = new SplObjectStorage();
        $this->walk($value, $depth + 1, $objects);
        return $lead . serialize($value) . $trail;
    }

    private function walk(mixed &$value, int $depth, SplObjectStorage $objects): void {
        if ($depth > PL_MAX_DEPTH) {
            throw new PlSkipCell('nesting too deep');
        }
        if (is_string($value)) {
            $value = $this->rewrite($value, $depth);
        } elseif (is_array($value)) {
            $this->walkArray($value, $depth, $objects);
        } elseif (is_object($value)) {
            $value = $this->walkObject($value, $depth, $objects);
        }
    }

    private function walkArray(array &$array, int $depth, SplObjectStorage $objects): void {
        $keysChange = false;
        foreach ($array as $key => &$item) {
            $this->walk($item, $depth + 1, $objects);
            if (is_string($key) && $this->contains($key)) {
                $keysChange = true;
            }
        }
        unset($item);
        if (!$keysChange) {
            return;
        }
        $rebuilt = [];
        foreach (array_keys($array) as $key) {
            $newKey = is_string($key) ? $this->replacePlain($key) : $key;
            if (array_key_exists($newKey, $rebuilt)) {
                throw new PlSkipCell('two array keys would become equal');
            }
            // Keep PHP references (serialized as R:) that point into this array.
            if (ReflectionReference::fromArrayElement($array, $key) !== null) {
                $rebuilt[$newKey] = &$array[$key];
            } else {
                $rebuilt[$newKey] = $array[$key];
            }
        }
        $array = $rebuilt;
    }

    /**
     * unserialize() with allowed_classes=false turns every object into a
     * __PHP_Incomplete_Class, whose properties cannot be written. The object
     * is rebuilt instead: its properties (an array cast keeps private and
     * protected names mangled) are walked, serialized as an array, and the
     * array header swapped for the object header of the original class.
     * The same object reached twice is rebuilt once, so shared objects (r:)
     * stay shared.
     */
    private function walkObject(object $object, int $depth, SplObjectStorage $objects): object {
        if ($objects->contains($object)) {
            $done = $objects[$object];
            if ($done === null) {
                throw new PlSkipCell('object refers to itself');
            }
            return $done;
        }
        $properties = (array) $object;
        $class = $properties['__PHP_Incomplete_Class_Name'] ?? get_class($object);
        unset($properties['__PHP_Incomplete_Class_Name']);
        $before = serialize($properties);
        $objects[$object] = null;
        $this->walkArray($properties, $depth + 1, $objects);
        $after = serialize($properties);
        if ($after === $before) {
            $objects[$object] = $object;
            return $object;
        }
        $encoded = 'O:' . strlen($class) . ':"' . $class . '":' . substr($after, 2);
        $rebuilt = unserialize($encoded, ['allowed_classes' => false]);
        if (!is_object($rebuilt)) {
            throw new PlSkipCell('could not rebuild an object of class ' . $class);
        }
        $objects[$object] = $rebuilt;
        return $rebuilt;
    }
}

/**
 * [value, leading whitespace, trailing whitespace] when $text is one complete
 * PHP-serialized value that PHP re-serializes without loss, null when it is
 * plain text. Throws PlSkipCell for text that is serialized but unsafe to
 * re-encode here (corrupt, Serializable payloads, enums, trailing bytes).
 */
function pl_unserialize(string $text): ?array {
    // WordPress trims before unserializing (maybe_unserialize), so do the same.
    $core = trim($text);
    if (!preg_match('~^(?:N;|b:[01];|i:[+-]?\d+;|d:[^;]+;|s:\d+:".*";|[aOCE]:\d+:.*[;}])$~s', $core)) {
        return null;
    }
    $start = strlen($text) - strlen(ltrim($text));
    $lead = substr($text, 0, $start);
    $trail = substr($text, $start + strlen($core));
    if ($core === 'b:0;') {
        return [false, $lead, $trail];
    }
    $value = @unserialize($core, ['allowed_classes' => false]);
    if ($value === false) {
        throw new PlSkipCell('looks serialized but PHP cannot unserialize it');
    }
    // PHP 8.2 ignores bytes after a complete value; a value that still
    // decodes without its last byte had such bytes, which re-encoding would drop.
    if (@unserialize(substr($core, 0, -1), ['allowed_classes' => false]) !== false
        || substr($core, 0, -1) === 'b:0;') {
        throw new PlSkipCell('serialized value followed by extra data');
    }
    if (serialize($value) !== $core && preg_match('~(?:^|[;{}])C:\d+:"~', $core)) {
        // A Serializable object's payload is lost without its class.
        throw new PlSkipCell('serialized value holds a custom-serialized (C:) object');
    }
    return [$value, $lead, $trail];
}

function pl_quote_identifier(string $name): string {
    return '`' . str_replace('`', '``', $name) . '`';
}

function pl_like_escape(string $value): string {
    return addcslashes($value, '\\%_');
}

/** Bind type and value for a primary key value read from the database. */
function pl_key_param(string $type, $value): array {
    if ($value !== null && preg_match('~int$~', $type) && is_int($value)) {
        return ['i', $value];
    }
    return ['s', $value === null ? null : (string) $value];
}

function pl_execute(mysqli $db, string $sql, array $params, bool $reuse = false): mysqli_stmt {
    // Updates repeat the same few statements thousands of times; preparing once saves a round trip each.
    static $prepared = [];
    $stmt = $reuse ? ($prepared[$sql] ??= $db->prepare($sql)) : $db->prepare($sql);
    if ($params) {
        $types = '';
        $values = [];
        foreach ($params as [$type, $value]) {
            $types .= $type;
            $values[] = $value;
        }
        $stmt->bind_param($types, ...$values);
    }
    $stmt->execute();
    return $stmt;
}

/** Adds the old forms found in the given columns of a table to $counts, streaming the rows. */
function pl_count_rows(mysqli $db, PlReplacer $replacer, string $table, array $columns,
                       string $filterSql, array $filterParams, array &$counts): void {
    $sql = 'SELECT ' . implode(', ', array_map('pl_quote_identifier', $columns))
        . ' FROM ' . pl_quote_identifier($table) . ($filterSql !== '' ? ' WHERE ' . $filterSql : '');
    $stmt = pl_execute($db, $sql, $filterParams);
    $row = array_fill(0, count($columns), null);
    $refs = [];
    foreach ($row as $i => &$cell) {
        $refs[$i] = &$cell;
    }
    unset($cell);
    $stmt->bind_result(...$refs);
    while ($stmt->fetch()) {
        foreach ($refs as $value) {
            if (is_string($value)) {
                $replacer->count($value, $counts);
            }
        }
    }
    $stmt->close();
}

// ---------------------------------------------------------------------------

$request = json_decode(stream_get_contents(STDIN), true);
if (!is_array($request)) {
    pl_fail('request must be a JSON object');
}
$dbConfig = $request['db'] ?? null;
if (!is_array($dbConfig) || !isset($dbConfig['name'], $dbConfig['user'])) {
    pl_fail('db must give at least name and user');
}
$prefix = $request['prefix'] ?? null;
if (!is_string($prefix) || !preg_match('~^[A-Za-z0-9_]{1,64}$~', $prefix)) {
    pl_fail('prefix must be 1 to 64 letters, digits or underscores');
}
$pairs = $request['replacements'] ?? null;
if (!is_array($pairs) || !$pairs || !array_is_list($pairs)) {
    pl_fail('replacements must be a non-empty list of [old, new] pairs');
}
foreach ($pairs as $pair) {
    if (!is_array($pair) || count($pair) !== 2 || !array_is_list($pair)
        || !is_string($pair[0]) || !is_string($pair[1]) || $pair[0] === '' || $pair[0] === $pair[1]) {
        pl_fail('each replacement must be [old, new]: two different strings, old not empty');
    }
}
$dryRun = (bool) ($request['dry_run'] ?? false);
$batchSize = (int) ($request['batch_size'] ?? 500);
if ($batchSize < 1 || $batchSize > 100000) {
    pl_fail('batch_size must be between 1 and 100000');
}

$replacer = new PlReplacer($pairs);

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
try {
    $db = new mysqli(
        (string) ($dbConfig['host'] ?? 'localhost'),
        (string) $dbConfig['user'],
        (string) ($dbConfig['password'] ?? ''),
        (string) $dbConfig['name'],
        (int) ($dbConfig['port'] ?? 3306),
        isset($dbConfig['socket']) ? (string) $dbConfig['socket'] : null,
    );
    $db->set_charset('utf8mb4');
} catch (mysqli_sql_exception $e) {
    pl_fail('cannot connect to the database: ' . $e->getMessage());
}

$textTypes = ['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext',
              'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'json'];

$found = [];
$remaining = [];
$tables = 0;
$rowsChanged = 0;
$cellsChanged = 0;
$skippedCells = 0;
$skippedTables = [];
$errors = [];
$plans = [];

function pl_note_error(array &$errors, string $message): void {
    if (count($errors) < 50) {
        $errors[] = $message;
    }
}

try {
    $stmt = pl_execute($db,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
        . " AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME LIKE ? ORDER BY TABLE_NAME",
        [['s', pl_like_escape($prefix) . '%']]);
    $tableNames = array_column($stmt->get_result()->fetch_all(MYSQLI_NUM), 0);

    foreach ($tableNames as $table) {
        $stmt = pl_execute($db,
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_KEY FROM information_schema.COLUMNS"
            . " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            [['s', $table]]);
        $columnTypes = [];
        $textColumns = [];
        foreach ($stmt->get_result()->fetch_all(MYSQLI_ASSOC) as $column) {
            $columnTypes[$column['COLUMN_NAME']] = strtolower($column['DATA_TYPE']);
            if (in_array(strtolower($column['DATA_TYPE']), $textTypes, true)) {
                $textColumns[] = $column['COLUMN_NAME'];
            }
        }
        $stmt = pl_execute($db,
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()"
            . " AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            [['s', $table]]);
        $keyColumns = array_column($stmt->get_result()->fetch_all(MYSQLI_NUM), 0);

        if (!$textColumns) {
            if ($keyColumns) {
                $tables++;
            } else {
                $skippedTables[] = $table;
            }
            continue;
        }

        $quotedTable = pl_quote_identifier($table);
        // Rows without any needle cannot hold an old form: the server drops them.
        $filterSql = '';
        $filterParams = [];
        if ($replacer->needles !== null) {
            $conditions = [];
            foreach ($textColumns as $column) {
                foreach ($replacer->needles as $needle) {
                    $conditions[] = pl_quote_identifier($column) . ' LIKE ?';
                    $filterParams[] = ['s', '%' . pl_like_escape($needle) . '%'];
                }
            }
            $filterSql = '(' . implode(' OR ', $conditions) . ')';
        }

        $plans[] = [$table, $textColumns, $filterSql, $filterParams];
        if (!$keyColumns) {
            // Rows cannot be addressed, so nothing is rewritten; what the table holds still counts.
            $skippedTables[] = $table;
            pl_count_rows($db, $replacer, $table, $textColumns, $filterSql, $filterParams, $found);
            pl_count_rows($db, $replacer, $table, $textColumns, $filterSql, $filterParams, $remaining);
            continue;
        }

        $tables++;
        $writable = array_values(array_diff($textColumns, $keyColumns));
        $selectColumns = array_merge($keyColumns, $textColumns);
        $selectSql = 'SELECT ' . implode(', ', array_map('pl_quote_identifier', $selectColumns))
            . ' FROM ' . $quotedTable;
        $orderSql = ' ORDER BY ' . implode(', ', array_map('pl_quote_identifier', $keyColumns))
            . ' LIMIT ' . $batchSize;
        $whereKey = implode(' AND ', array_map(fn($c) => pl_quote_identifier($c) . ' = ?', $keyColumns));

        $last = null;
        while (true) {
            $conditions = [];
            $params = [];
            if ($filterSql !== '') {
                $conditions[] = $filterSql;
                $params = $filterParams;
            }
            if ($last !== null) {
                // Keyset pagination: (k1, k2) > (v1, v2) spelled out so indexes are used.
                $ors = [];
                foreach ($keyColumns as $i => $column) {
                    $ands = [];
                    foreach (array_slice($keyColumns, 0, $i) as $j => $prior) {
                        $ands[] = pl_quote_identifier($prior) . ' = ?';
                        $params[] = pl_key_param($columnTypes[$prior], $last[$j]);
                    }
                    $ands[] = pl_quote_identifier($column) . ' > ?';
                    $params[] = pl_key_param($columnTypes[$column], $last[$i]);
                    $ors[] = '(' . implode(' AND ', $ands) . ')';
                }
                $conditions[] = '(' . implode(' OR ', $ors) . ')';
            }
            $sql = $selectSql . ($conditions ? ' WHERE ' . implode(' AND ', $conditions) : '') . $orderSql;
            $rows = pl_execute($db, $sql, $params)->get_result()->fetch_all(MYSQLI_ASSOC);
            if (!$rows) {
                break;
            }
            if (!$dryRun) {
                $db->begin_transaction();
            }
            foreach ($rows as $row) {
                $changes = [];
                foreach ($textColumns as $column) {
                    $cell = $row[$column];
                    if (!is_string($cell)) {
                        continue;
                    }
                    $replacer->count($cell, $found);
                    $final = $cell;
                    if (in_array($column, $writable, true)) {
                        try {
                            $final = $replacer->rewrite($cell);
                        } catch (PlSkipCell $e) {
                            $skippedCells++;
                            pl_note_error($errors, "$table.$column: " . $e->getMessage());
                        }
                    }
                    if ($final !== $cell) {
                        $changes[$column] = $final;
                    }
                    // What a dry run reports as remaining; a real run counts again at the end.
                    $replacer->count($final, $remaining);
                }
                if (!$changes) {
                    continue;
                }
                if (!$dryRun) {
                    $params = [];
                    foreach ($changes as $value) {
                        $params[] = ['s', $value];
                    }
                    foreach ($keyColumns as $column) {
                        $params[] = pl_key_param($columnTypes[$column], $row[$column]);
                    }
                    $sets = implode(', ', array_map(fn($c) => pl_quote_identifier($c) . ' = ?', array_keys($changes)));
                    try {
                        pl_execute($db, 'UPDATE ' . $quotedTable . ' SET ' . $sets . ' WHERE ' . $whereKey, $params, true);
                    } catch (mysqli_sql_exception $e) {
                        // The row keeps its old values; the final count sees them.
                        $skippedCells += count($changes);
                        pl_note_error($errors, "$table: update failed: " . $e->getMessage());
                        continue;
                    }
                }
                $rowsChanged++;
                $cellsChanged += count($changes);
            }
            if (!$dryRun) {
                $db->commit();
            }
            $lastRow = end($rows);
            $last = array_map(fn($c) => $lastRow[$c], $keyColumns);
            if (count($rows) < $batchSize) {
                break;
            }
        }
    }
    if (!$dryRun) {
        // Counted afresh rather than from what was written: this also sees
        // failed updates and anything written by others during the run.
        $remaining = [];
        foreach ($plans as [$table, $textColumns, $filterSql, $filterParams]) {
            pl_count_rows($db, $replacer, $table, $textColumns, $filterSql, $filterParams, $remaining);
        }
    }
} catch (mysqli_sql_exception $e) {
    pl_fail('database error: ' . $e->getMessage());
} catch (Throwable $e) {
    pl_fail($e->getMessage());
}

$byOld = fn(array $counts) => array_reduce(array_keys($replacer->olds), function ($carry, $i) use ($counts, $replacer) {
    $old = $replacer->olds[$i];
    $carry[$old] = ($carry[$old] ?? 0) + ($counts[$i] ?? 0);
    return $carry;
}, []);

pl_answer([
    'ok' => true,
    'dry_run' => $dryRun,
    'tables' => $tables,
    'rows_changed' => $rowsChanged,
    'cells_changed' => $cellsChanged,
    'remaining' => (object) $byOld($remaining),
    'found' => (object) $byOld($found),
    'skipped_tables' => $skippedTables,
    'skipped_cells' => $skippedCells,
    'errors' => $errors,
]);
