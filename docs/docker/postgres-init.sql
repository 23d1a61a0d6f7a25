-- The two demo shard databases of logical database `shop_pg` (docs/docker/dbmesh.toml).
-- Run once by the postgres image on first start (/docker-entrypoint-initdb.d).
CREATE DATABASE shop_ds_0;
CREATE DATABASE shop_ds_1;
