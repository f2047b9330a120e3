/* mpi_hello: the MPI program of e2e/mpi_test.go. Every rank reports itself
 * (rank, size, pid, mount namespace: one container each), then the ranks
 * pass a 4 MiB buffer round a ring and check it, and reduce their ranks, so
 * that point-to-point and collective traffic both cross the containers. Rank
 * 0 prints "ring ok" and "sum S" when all went well. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N (4 << 20)

int main(int argc, char **argv)
{
	int rank, size;
	char ns[256] = "?";
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	ssize_t n = readlink("/proc/self/ns/mnt", ns, sizeof ns - 1);
	if (n > 0)
		ns[n] = 0;
	printf("rank %d of %d pid %d %s\n", rank, size, (int)getpid(), ns);
	fflush(stdout);

	unsigned char *out = malloc(N), *in = malloc(N);
	if (!out || !in)
		MPI_Abort(MPI_COMM_WORLD, 2);
	for (int i = 0; i < N; i++)
		out[i] = (unsigned char)(i * 7 + rank);
	int next = (rank + 1) % size, prev = (rank + size - 1) % size;
	MPI_Sendrecv(out, N, MPI_BYTE, next, 1, in, N, MPI_BYTE, prev, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	int bad = 0;
	for (int i = 0; i < N; i++)
		if (in[i] != (unsigned char)(i * 7 + prev))
			bad++;
	int allbad = 0, sum = 0;
	MPI_Reduce(&bad, &allbad, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
	MPI_Reduce(&rank, &sum, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		printf(allbad ? "ring BAD %d bytes\n" : "ring ok\n", allbad);
		printf("sum %d\n", sum);
	}
	MPI_Finalize();
	return allbad ? 1 : 0;
}
