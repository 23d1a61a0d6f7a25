//! dbmesh library
