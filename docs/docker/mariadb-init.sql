-- The two demo shard databases of logical database `shop` (docs/docker/dbmesh.toml).
-- Run once by the mariadb image on first start (/docker-entrypoint-initdb.d).
CREATE DATABASE IF NOT EXISTS shop_ds_0 CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE DATABASE IF NOT EXISTS shop_ds_1 CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
