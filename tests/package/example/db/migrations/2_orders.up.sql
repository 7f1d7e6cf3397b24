CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     product_id bigint NOT NULL REFERENCES products (id));
