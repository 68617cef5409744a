from moby_asm.cli.main import run

run()
