# Sourced by bench/ab.sh and bench/rss.sh: the config both run Cartwatch with.
#
#   write_bench_config FILE PORT ADMIN_LISTEN DATA_DIR
#
# One I/O thread, fsync off, the bench site (write key bench-write-key), the repository's
# templates; the caller appends rules (bench/rules.toml) or anything else it measures.
write_bench_config() {
  local file=$1 port=$2 admin=$3 data=$4
  cat > "$file" <<CONF
[server]
listen = "127.0.0.1:$port"
admin_listen = "$admin"
io_threads = 1
[storage]
data_dir = "$data"
fsync = false
[[sites]]
name = "bench"
write_key = "bench-write-key"
secret_key = "bench-secret-key"
[templates]
dir = "$ROOT/config/templates"
CONF
}
