/* atrium-load: the send schedule (schedule.c), a min-heap of client indexes by due time. */
#ifndef ATRIUM_LOAD_SCHEDULE_H
#define ATRIUM_LOAD_SCHEDULE_H

extern int *heap, heap_n; /* heap[0]: the next client due; allocated by main.c */

void heap_push(int idx);
void fire_due_sends(void);

#endif
