-- Sample data for the demo and the tests: a small shop with PII in `customers`.
CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
USE shop;

DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS customers;

CREATE TABLE customers (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(200) NOT NULL,
  phone VARCHAR(30),
  ssn CHAR(11),
  card_number VARCHAR(19),
  birth_date DATE,
  credit_limit DECIMAL(10,2),
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB;

CREATE TABLE orders (
  id INT PRIMARY KEY AUTO_INCREMENT,
  customer_id INT NOT NULL,
  item VARCHAR(100) NOT NULL,
  quantity INT NOT NULL,
  total DECIMAL(10,2) NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
  ordered_at DATETIME NOT NULL,
  FOREIGN KEY (customer_id) REFERENCES customers(id)
) ENGINE=InnoDB;

INSERT INTO customers (name, email, phone, ssn, card_number, birth_date, credit_limit, created_at) VALUES
  ('Ada Lovelace',    'ada@example.com',     '+44 20 7946 0018', '123-45-6789', '4111111111111111', '1815-12-10', 5000.00, '2024-01-02 10:00:00'),
  ('Alan Turing',     'alan@example.org',    '+44 161 496 0735', '234-56-7890', '5500005555555559', '1912-06-23', 7500.00, '2024-01-03 11:30:00'),
  ('Grace Hopper',    'grace@navy.example',  '+1 202 555 0143',  '345-67-8901', '340000000000009',  '1906-12-09', 9000.00, '2024-02-14 09:15:00'),
  ('Edsger Dijkstra', 'edsger@example.nl',   '+31 20 555 0199',  '456-78-9012', '6011000000000004', '1930-05-11', 3000.00, '2024-03-01 16:45:00'),
  ('Barbara Liskov',  'barbara@mit.example', '+1 617 555 0172',  '567-89-0123', '3530111333300000', '1939-11-07', 8200.00, '2024-03-17 08:05:00'),
  ('Ken Thompson',    'ken@bell.example',    '+1 908 555 0111',  '678-90-1234', '4012888888881881', '1943-02-04', 6100.00, '2024-04-22 13:20:00'),
  ('Margaret Hamilton','margaret@nasa.example','+1 281 555 0150','789-01-2345', '5105105105105100', '1936-08-17', 9900.00, '2024-05-05 07:55:00'),
  ('Dennis Ritchie',  'dmr@bell.example',    '+1 908 555 0122',  '890-12-3456', '4222222222222',    '1941-09-09', 4000.00, '2024-06-30 18:10:00');

INSERT INTO orders (customer_id, item, quantity, total, status, ordered_at) VALUES
  (1, 'Analytical Engine manual', 1, 49.90, 'paid', '2024-07-01 10:00:00'),
  (1, 'Punch cards (box)', 3, 29.70, 'shipped', '2024-07-02 11:00:00'),
  (2, 'Enigma rotor set', 1, 199.00, 'new', '2024-07-03 12:00:00'),
  (3, 'COBOL handbook', 2, 79.80, 'paid', '2024-07-04 13:00:00'),
  (4, 'Semaphore kit', 1, 15.00, 'cancelled', '2024-07-05 14:00:00'),
  (5, 'CLU reference', 1, 35.00, 'shipped', '2024-07-06 15:00:00'),
  (6, 'PDP-7 spare parts', 4, 480.00, 'paid', '2024-07-07 16:00:00'),
  (7, 'Apollo guidance listing', 1, 120.00, 'new', '2024-07-08 17:00:00'),
  (8, 'C programming book', 5, 199.50, 'paid', '2024-07-09 18:00:00');
