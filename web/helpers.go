package web

import "strconv"

func rowsAttr(n int) string {
	if n <= 0 {
		n = 4
	}
	return strconv.Itoa(n)
}
