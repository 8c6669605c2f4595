// Package platform owns what differs between operating systems: finding the
// LAN interfaces and writing faild's host routes into the kernel.
package platform
