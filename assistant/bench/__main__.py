from assistant.bench.command import bench

bench(prog_name="python -m assistant.bench")
