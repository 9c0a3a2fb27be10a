<?php
// A small guest book: `?note=text` adds a note, every request lists them. The database password
// is read from the secret file named by DB_PASSWORD_FILE, never from the environment.
header('Content-Type: text/plain');
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
try {
    $password = trim(file_get_contents(getenv('DB_PASSWORD_FILE')));
    $db = new mysqli(getenv('DB_HOST'), getenv('DB_USER'), $password, getenv('DB_NAME'));
    $db->query('CREATE TABLE IF NOT EXISTS notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(200) NOT NULL)');
    $note = $_GET['note'] ?? '';
    if ($note !== '') {
        $insert = $db->prepare('INSERT INTO notes (body) VALUES (?)');
        $insert->bind_param('s', $note);
        $insert->execute();
    }
    echo 'app ', gethostname(), ' via ', $_SERVER['HTTP_X_VIA'] ?? 'direct', "\n";
    echo 'database ', $db->server_info, "\n";
    foreach ($db->query('SELECT body FROM notes ORDER BY id') as $row) {
        echo 'note: ', $row['body'], "\n";
    }
} catch (Throwable $e) {
    http_response_code(503);
    echo 'database unavailable: ', $e->getMessage(), "\n";
}
